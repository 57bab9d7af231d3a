#!/usr/bin/env bash
# cluster.sh start|stop RUNDIR : 3-node Ruby ROMA 1.3.0 cluster 127.0.0.1_10001 127.0.0.2_10002 127.0.0.3_10003 (rn=2)
# cluster.sh join RUNDIR : start 127.0.0.4_10004 with -j 127.0.0.1:10001
ROMA_SRC=${ROMA_SRC:-/work/roma-ruby}
cmd=$1; RUNDIR=$2
start_node() { # addr port [extra]
  (cd $RUNDIR && nohup ruby -I $ROMA_SRC/lib $ROMA_SRC/bin/romad $1 -p $2 --config $RUNDIR/config.rb ${3:-} > $RUNDIR/stdout_$2.log 2>&1 & echo $! > $RUNDIR/pid_$2)
}
case $cmd in
  setup) $(dirname $0)/setup_run.sh $RUNDIR 127.0.0.1_10001 127.0.0.2_10002 127.0.0.3_10003 ;;
  start) for i in 1 2 3; do start_node 127.0.0.$i 1000$i; done ;;
  join)  start_node 127.0.0.4 10004 "-j 127.0.0.1:10001" ;;
  stop)  for port in 10001 10002 10003 10004; do  # kill the ruby process listening on each port, by PID
           pid=$(ss -ltnpH "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
           [ -n "$pid" ] && kill -9 $pid; done
         rm -f $RUNDIR/pid_*; find $RUNDIR/data -name lock -delete ;;
esac
