"""Which kind each test is: one table, read by the conftest hook, so ``-m unit`` is a fast loop to trust.

Every test carries exactly one of ``unit`` (no network peer, no subprocess, under a second), ``integration``
(real peers on loopback: servers, snmpd, snmpsim, promtool, the agent's CLI as a process; and the few
in-process tests slower than a unit, such as the BER fuzzing against pysnmp), or ``e2e`` (the whole agent with
Prometheus, Alertmanager, Chromium, the demo, the wheel or the Debian package); plus ``root`` where it needs
root (network namespaces, raw ICMP, nftables, dpkg). A module gives the kind of its tests; ``others`` names
the tests (by function, all their parameters) of another kind. A test module missing here fails collection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("unit", "integration", "e2e")
ALL = frozenset({"*"})


@dataclass(frozen=True)
class Kinds:
    kind: str
    others: dict[str, str] = field(default_factory=dict)
    root: frozenset[str] = frozenset()  # test functions needing root; ALL for the whole module

    def of(self, function: str) -> tuple[str, bool]:
        return self.others.get(function, self.kind), self.root == ALL or function in self.root


def _each(kind: str, *functions: str) -> dict[str, str]:
    return dict.fromkeys(functions, kind)


UNIT, INTEG, E2E = KINDS

TABLE: dict[str, Kinds] = {
    "test_agent.py": Kinds(INTEG),
    "test_alert_count.py": Kinds(E2E),
    "test_catalogues.py": Kinds(UNIT, _each(INTEG, "test_check_config_passes", "test_the_readme_kpi_table_is_current",
                                            "test_kpi_ids_unique", "test_include_file_quotes_appear_verbatim")),
    "test_cli_flags.py": Kinds(INTEG, _each(UNIT, "test_accept_encoding")),
    "test_config.py": Kinds(UNIT, _each(INTEG, "test_shipped_province_is_valid",
                                        "test_bad_date_is_reported_with_file_line_and_key",
                                        "test_check_config_exit_codes",
                                        "test_probe_allowlist_refuses_real_network_addresses",
                                        "test_a_secret_missing_for_many_targets_is_one_error_with_the_count_and_a_hint")),
    "test_dashboards.py": Kinds(UNIT, _each(INTEG, "test_committed_files_match_the_generator",
                                            "test_below_target_since_holds_through_a_gap_and_restarts_after_a_met_target",
                                            "test_the_command_writes_where_asked_and_never_into_the_installed_packages",
                                            "test_every_panel_query_parses")),
    "test_deb.py": Kinds(E2E, root=ALL),
    "test_demo_conventions.py": Kinds(E2E),
    "test_dns.py": Kinds(INTEG),
    "test_dns_dnssec.py": Kinds(INTEG),
    "test_dns_lab.py": Kinds(INTEG),
    "test_dns_rules.py": Kinds(INTEG),
    "test_e2e_prometheus.py": Kinds(E2E),
    "test_exposition_text.py": Kinds(INTEG),
    "test_faults_alerts.py": Kinds(INTEG),
    "test_faults_flapping.py": Kinds(INTEG, root=ALL),
    "test_faults_icmp.py": Kinds(INTEG, root=ALL),
    "test_faults_ipv6.py": Kinds(INTEG),
    "test_faults_mcu.py": Kinds(INTEG),
    "test_faults_sip.py": Kinds(INTEG),
    "test_faults_tls_client.py": Kinds(INTEG, _each(
        UNIT, "test_a_missing_certificate_file_is_a_configuration_error_naming_the_field")),
    "test_http_auth.py": Kinds(INTEG),
    "test_http_certs.py": Kinds(UNIT),
    "test_http_collector.py": Kinds(INTEG),
    "test_http_config.py": Kinds(UNIT, _each(INTEG, "test_bac_giang_portals_validate_with_the_province_units")),
    "test_http_outcomes.py": Kinds(INTEG),
    "test_http_province.py": Kinds(INTEG),
    "test_http_server.py": Kinds(INTEG),
    "test_icmp_lab.py": Kinds(INTEG, root=frozenset({"test_lab_routers_break_as_the_agent_sees_it",
                                                 "test_a_dead_lab_table_is_removed_by_the_next_lab"})),
    "test_icmp_loopback.py": Kinds(INTEG, root=frozenset({"test_without_cap_net_raw_ping_sockets_take_over",
                                                      "test_without_any_icmp_right_the_reason_is_permission"})),
    "test_icmp_netns.py": Kinds(INTEG, root=ALL),
    "test_icmp_reader.py": Kinds(INTEG, root=frozenset({"test_an_echo_reply_counts_only_from_the_pinged_address"})),
    "test_kind_contributions.py": Kinds(INTEG),
    "test_kpi.py": Kinds(UNIT),
    "test_kpi_evaluators.py": Kinds(INTEG),
    "test_lab_cleanup.py": Kinds(E2E, root=ALL),
    "test_lazy_registry.py": Kinds(INTEG, _each(UNIT, "test_light_models_are_the_collectors_own",
                                                "test_registry_takes_kinds_of_its_own")),
    "test_malloc.py": Kinds(UNIT),
    "test_manual_data.py": Kinds(UNIT, _each(INTEG, "test_a_file_replaced_while_it_is_read_is_not_half_taken")),
    "test_markers.py": Kinds(UNIT),
    "test_mcu_lab.py": Kinds(INTEG, _each(UNIT, "test_bad_parameters_are_refused_with_a_reason")),
    "test_mcu_snmpd.py": Kinds(INTEG),
    "test_overload.py": Kinds(INTEG, _each(UNIT,
                                           "test_down_after_one_keeps_the_first_failure_down_and_zero_is_refused")),
    "test_periods.py": Kinds(UNIT),
    "test_plan_kpis.py": Kinds(INTEG, _each(UNIT, "test_documents_of_the_9th_and_the_10th_fall_in_different_quarters",
                                            "test_monthly_figures_cannot_be_cut_at_the_10th_unless_marked_approximate",
                                            "test_example_rows_are_never_shown_as_figures",
                                            "test_class_must_agree_with_where_the_measure_reads",
                                            "test_a_ratio_target_lies_between_0_and_100_percent",
                                            "test_member_clock_credits_time_to_the_state_seen_and_skips_gaps")),
    "test_pool.py": Kinds(INTEG, _each(UNIT, "test_units_split_evenly_inside_a_shard"),
                          root=frozenset({"test_two_workers", "test_sigterm_stops_the_workers"})),
    "test_power_lab.py": Kinds(INTEG),
    "test_power_snmpsim.py": Kinds(INTEG),
    "test_probe_allowlist.py": Kinds(INTEG),
    "test_probe_runner.py": Kinds(INTEG),
    "test_protocol_clients.py": Kinds(INTEG),
    "test_province_builder.py": Kinds(UNIT),
    "test_readiness.py": Kinds(INTEG, _each(UNIT, "test_the_first_round_spread_follows_what_can_run_at_once"),
                               root=frozenset({"test_ready_once_live_routers_answered_not_after_dead_ones_timeouts",
                                               "test_a_live_links_whole_first_probe_is_waited_for_a_dead_links_echoes_are_not"})),
    "test_report.py": Kinds(E2E),
    "test_rules.py": Kinds(INTEG, _each(UNIT, "test_periods_follow_the_province_definition")),
    "test_service.py": Kinds(INTEG, _each(UNIT, "test_rate_limit_filter_counts_per_subject_and_summarises")),
    "test_sharding.py": Kinds(INTEG, _each(UNIT, "test_parse", "test_every_unit_belongs_to_exactly_one_shard")),
    "test_sip_lab.py": Kinds(INTEG),
    "test_sip_sipp.py": Kinds(INTEG),
    "test_history.py": Kinds(UNIT),
    "test_snapshots.py": Kinds(INTEG),
    "test_snmp_ber.py": Kinds(INTEG, _each(UNIT, "test_unusual_encodings_agree_or_are_refused",
                                           "test_an_agent_reads_a_getbulk_whose_repetitions_exceed_its_varbinds")),
    "test_snmp_lab.py": Kinds(INTEG),
    "test_snmp_lean.py": Kinds(UNIT),
    "test_snmp_receive.py": Kinds(INTEG),
    "test_snmp_replies.py": Kinds(INTEG),
    "test_snmp_snmpd.py": Kinds(INTEG),
    "test_snmp_snmpsim.py": Kinds(INTEG),
    "test_sources_child.py": Kinds(INTEG),
    "test_sources_config.py": Kinds(UNIT, _each(INTEG, "test_the_agent_refuses_sources_outside_the_probe_allowlist")),
    "test_sources_file_drop.py": Kinds(UNIT, _each(INTEG, "test_a_file_replaced_while_it_is_read_is_not_half_taken")),
    "test_sources_http.py": Kinds(INTEG),
    "test_sources_lab.py": Kinds(INTEG, _each(UNIT, "test_every_quote_is_verbatim_in_its_seed")),
    # Validating settings is a unit; every fetch runs in a child process (agent.sources.child), so is not.
    "test_sources_sql.py": Kinds(INTEG, _each(UNIT, "test_sql_settings_are_validated",
                                              "test_only_a_single_read_only_select_passes_check_config",
                                              "test_read_only_selects_pass_check_config",
                                              "test_the_shape_is_validated_in_the_config",
                                              "test_the_url_check_without_sqlalchemy_is_sqlalchemys",
                                              "test_every_known_driver_loads_in_sqlalchemy",
                                              "test_bind_parameters_are_found_as_sqlalchemy_finds_them")),
    "test_start_order.py": Kinds(INTEG),
    "test_state.py": Kinds(INTEG, _each(UNIT, "test_a_snapshot_can_be_read_while_probes_go_on",
                                        "test_counters_and_history_round_trip_and_later_saves_write_only_what_changed",
                                        "test_the_debounced_state_carries_over_so_down_after_holds_across_a_restart",
                                        "test_an_unusable_state_file_is_reported_set_aside_and_replaced",
                                        "test_inconsistent_rows_are_skipped_by_name_and_the_others_restored",
                                        "test_a_save_that_fails_is_counted_and_the_next_one_recovers")),
    "test_status_page.py": Kinds(E2E, _each(INTEG, "test_every_area_of_the_shipped_provinces_has_words")),
    "test_systemd_unit.py": Kinds(E2E),
    "test_web_security.py": Kinds(INTEG),
    "test_wheel.py": Kinds(E2E),
}


def kinds_of(module: str, function: str) -> tuple[str, bool] | None:
    """(kind, needs root) of a test, by its module's file name and its function's name; None if not listed."""
    entry = TABLE.get(module)
    return None if entry is None else entry.of(function)
