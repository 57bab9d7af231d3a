// ROMA 1.3.0's command names in the order ROMA iterates its command table
// (`Roma::Event::Handler.ev_list`, a Ruby Hash). The order matters only for the
// unknown-command suggestion (spec R3.3), where ties go to the first command.
//
// Where the names come from (roma/roma at 4bb9171^, lib/roma/command/receiver.rb):
// each public method `ev_<name>` of `Roma::Command::Receiver` is a command. The
// method names come from the modules RoutingCommandReceiver, BackgroundCommandReceiver
// (which includes VnodeCommandReceiver), SystemCommandReceiver, MultiHashCommandReceiver
// (`def_command_with_relay` makes `ev_X` and `ev_rX`) and the plugin
// modules (here only PluginStorage, plugin_storage.rb).
//
// - Startup (`romad` without `-j`): `mk_starting_evlist` clears the table and adds the
//   system families in this order: RoutingCommandReceiver.public_instance_methods,
//   then BackgroundCommandReceiver's (its own, then Vnode's), then
//   SystemCommandReceiver's. That gives `startingMode`.
// - When every node answers (`timer_event_10sec`, "all nodes started"), `mk_evlist`
//   adds every `ev_` method of `Receiver.public_instance_methods` **without clearing**.
//   Names already there keep their place, so `normalMode` = `startingMode` followed by the
//   new names (PluginStorage and MultiHash commands).
// - Inside one module Ruby 3.1 lists methods in method-table slot order
//   (symbol serial number & (capacity-1)), not in source order. So each module's block is a
//   rotation of its source order (e.g. the routing block starts at `nodelist`,
//   and `join`/`leave` come last).
//
// These lists are not derived from the source by hand. They were dumped from
// `Handler.ev_list.keys` of a real ROMA 1.3.0 (ruby 3.1.2 and Debian 12 packages
// ruby-eventmachine, ruby-tokyocabinet, ruby-jaro-winkler, PLUGIN_FILES =
// ['plugin_storage.rb']), the same setup as /work/shared/reference. They depend on
// the Ruby build and what was loaded before ROMA; other setups may rotate the blocks.
//
// A server that also accepts memcached's `touch`, `verbosity` and `flush_all` adds them itself.

public enum ROMACommandNames {
    /// Before "all nodes started" (spec R3.7): the system families only, 111 names.
    public static let startingMode: [String] = [
        "nodelist", "create_nodes_from_v_idx", "routingdump", "enabled_repetition_in_routing?",
        "setroute", "getroute", "mklhash", "history_of_lost", "set_auto_recover",
        "rset_auto_recover", "set_lost_action", "rset_lost_action", "set_threshold_for_failover",
        "rset_threshold_for_failover", "set_gap_for_failover", "rset_gap_for_failover",
        "clear_rttable_sub_nid", "rclear_rttable_sub_nid", "add_rttable_sub_nid",
        "radd_rttable_sub_nid", "delete_rttable_sub_nid", "rdelete_rttable_sub_nid",
        "get_key_info", "join", "leave", "balance", "rbalance", "release", "recover", "rrecover",
        "spushv", "reqpushv", "spushv_protection", "rset_latency_avg_calc_rule",
        "add_latency_avg_calc_cmd", "radd_latency_avg_calc_cmd", "del_latency_avg_calc_cmd",
        "rdel_latency_avg_calc_cmd", "chg_latency_avg_calc_time_count",
        "rchg_latency_avg_calc_time_count", "set_continuous_limit", "rset_continuous_limit",
        "set_connection_pool_maxlength", "rset_connection_pool_maxlength",
        "set_emconnection_pool_maxlength", "rset_emconnection_pool_maxlength",
        "set_accepted_connection_expire_time", "rset_accepted_connection_expire_time",
        "set_connection_pool_expire_time", "rset_connection_pool_expire_time",
        "set_emconnection_pool_expire_time", "rset_emconnection_pool_expire_time",
        "switch_dns_caching", "rswitch_dns_caching", "set_hilatency_warn_time",
        "rset_hilatency_warn_time", "set_routing_trans_timeout", "rset_routing_trans_timeout",
        "set_spushv_read_timeout", "rset_spushv_read_timeout", "set_reqpushv_timeout_count",
        "rset_reqpushv_timeout_count", "set_spushv_klength_warn", "rset_spushv_klength_warn",
        "set_spushv_vlength_warn", "rset_spushv_vlength_warn", "wb_command_map", "rwb_command_map",
        "set_wb_shift_size", "rset_wb_shift_size", "set_storage_status", "set_gui_run_snapshot",
        "set_gui_last_snapshot", "rset_gui_last_snapshot", "set_cleanup_regexp",
        "set_log_shift_size", "rset_log_shift_size", "set_log_shift_age", "rset_log_shift_age",
        "balse", "rbalse", "shutdown", "rshutdown", "shutdown_self", "version", "quit", "whoami",
        "stats", "stat", "writebehind_rotate", "rwritebehind_rotate", "writebehind_get_path",
        "rwritebehind_get_path", "writebehind_get_current_file", "rwritebehind_get_current_file",
        "switch_replication", "rswitch_replication", "dcnice", "rdcnice", "restart", "rrestart",
        "set_log_level", "out", "rset", "rzset", "forcedly_start", "switch_failover",
        "rswitch_failover", "set_descriptor_table_size", "rset_descriptor_table_size",
        "set_latency_avg_calc_rule",    ]

    /// Names added after startup in this order (plugin_storage.rb, then the multi-hash commands).
    public static let normalModeAdditions: [String] = [
        "set_size_of_zredundant", "rset_size_of_zredundant", "set", "fset", "get", "gets", "fget",
        "delete", "fdelete", "rdelete", "add", "fadd", "replace", "freplace", "append", "fappend",
        "prepend", "fprepend", "cas", "fcas", "incr", "fincr", "decr", "fdecr", "set_expt",
        "fset_expt", "get_expt", "hashlist", "defhash", "rdefhash", "mounthash", "rmounthash",
        "umounthash", "rumounthash", "createhash", "rcreatehash", "deletehash", "rdeletehash",    ]

    /// A normally started single node with PLUGIN_FILES = ['plugin_storage.rb'] after
    /// "all nodes started": 149 names.
    public static let normalMode: [String] = startingMode + normalModeAdditions

    /// A node started with `-j` (join): `mk_evlist` runs on an empty table, so the order
    /// is `Receiver.public_instance_methods` (System, MultiHash, Routing, Background/Vnode),
    /// and plugin commands follow once "all nodes started". The same 149 names as `normalMode`.
    public static let joinMode: [String] = [
        "rset_latency_avg_calc_rule", "add_latency_avg_calc_cmd", "radd_latency_avg_calc_cmd",
        "del_latency_avg_calc_cmd", "rdel_latency_avg_calc_cmd", "chg_latency_avg_calc_time_count",
        "rchg_latency_avg_calc_time_count", "set_continuous_limit", "rset_continuous_limit",
        "set_connection_pool_maxlength", "rset_connection_pool_maxlength",
        "set_emconnection_pool_maxlength", "rset_emconnection_pool_maxlength",
        "set_accepted_connection_expire_time", "rset_accepted_connection_expire_time",
        "set_connection_pool_expire_time", "rset_connection_pool_expire_time",
        "set_emconnection_pool_expire_time", "rset_emconnection_pool_expire_time",
        "switch_dns_caching", "rswitch_dns_caching", "set_hilatency_warn_time",
        "rset_hilatency_warn_time", "set_routing_trans_timeout", "rset_routing_trans_timeout",
        "set_spushv_read_timeout", "rset_spushv_read_timeout", "set_reqpushv_timeout_count",
        "rset_reqpushv_timeout_count", "set_spushv_klength_warn", "rset_spushv_klength_warn",
        "set_spushv_vlength_warn", "rset_spushv_vlength_warn", "wb_command_map", "rwb_command_map",
        "set_wb_shift_size", "rset_wb_shift_size", "set_storage_status", "set_gui_run_snapshot",
        "set_gui_last_snapshot", "rset_gui_last_snapshot", "set_cleanup_regexp",
        "set_log_shift_size", "rset_log_shift_size", "set_log_shift_age", "rset_log_shift_age",
        "balse", "rbalse", "shutdown", "rshutdown", "shutdown_self", "version", "quit", "whoami",
        "stats", "stat", "writebehind_rotate", "rwritebehind_rotate", "writebehind_get_path",
        "rwritebehind_get_path", "writebehind_get_current_file", "rwritebehind_get_current_file",
        "switch_replication", "rswitch_replication", "dcnice", "rdcnice", "restart", "rrestart",
        "set_log_level", "out", "rset", "rzset", "forcedly_start", "switch_failover",
        "rswitch_failover", "set_descriptor_table_size", "rset_descriptor_table_size",
        "set_latency_avg_calc_rule", "hashlist", "defhash", "rdefhash", "mounthash", "rmounthash",
        "umounthash", "rumounthash", "createhash", "rcreatehash", "deletehash", "rdeletehash",
        "nodelist", "create_nodes_from_v_idx", "routingdump", "enabled_repetition_in_routing?",
        "setroute", "getroute", "mklhash", "history_of_lost", "set_auto_recover",
        "rset_auto_recover", "set_lost_action", "rset_lost_action", "set_threshold_for_failover",
        "rset_threshold_for_failover", "set_gap_for_failover", "rset_gap_for_failover",
        "clear_rttable_sub_nid", "rclear_rttable_sub_nid", "add_rttable_sub_nid",
        "radd_rttable_sub_nid", "delete_rttable_sub_nid", "rdelete_rttable_sub_nid",
        "get_key_info", "join", "leave", "balance", "rbalance", "release", "recover", "rrecover",
        "spushv", "reqpushv", "spushv_protection", "set_size_of_zredundant",
        "rset_size_of_zredundant", "set", "fset", "get", "gets", "fget", "delete", "fdelete",
        "rdelete", "add", "fadd", "replace", "freplace", "append", "fappend", "prepend",
        "fprepend", "cas", "fcas", "incr", "fincr", "decr", "fdecr", "set_expt", "fset_expt",
        "get_expt",    ]
}
