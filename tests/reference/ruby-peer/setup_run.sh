#!/usr/bin/env bash
# setup_run.sh RUNDIR NODE... : make a ROMA run dir with config.rb and a routing table from ROMA's mkroute.
# NODE like 127.0.0.1_10001. Redundancy = min(2, #nodes).
set -eu
ROMA_SRC=${ROMA_SRC:-/work/roma-ruby}
RUNDIR=$1; shift
mkdir -p $RUNDIR/{logs,routing,data,wb}
sed "s#\$RUNDIR#$RUNDIR#g" /work/shared/reference/ruby-roma-setup/config.rb > $RUNDIR/config.rb
r=2; [ $# -lt 2 ] && r=1
(cd $RUNDIR/routing && ruby -I $ROMA_SRC/lib $ROMA_SRC/bin/mkroute -r $r "$@")
