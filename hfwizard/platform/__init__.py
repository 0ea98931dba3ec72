"""The real Highflame platform: release catalogs, profile -> Helm values and Secret specs, chart sources, databases.

Modules (import them directly; this package imports nothing at start so `profile.py` may use `settings`):
    catalog    Catalog, load_catalog(version), available_versions(), latest()
    settings   the profile sections the real platform adds (node groups, license, model, identity, ...)
    values     service_releases(), enabled_services(), env_secrets(), all_secrets(), databases()
    facts      what catalog env sources mean; MissingSetting (a profile field the platform needs)
    ingress    per-cloud ingress values (used by values)
    secretsets prerequisite_secrets(), generated_secrets(), missing_inputs()
    secretspec SecretSpec / SecretEntry and how a spec becomes Secret data (materialize, generate)
    charts     ChartSource: repository, mirror folder, local chart, OCI; pull_to(dir, catalog, source)
    sizing     node_group_requests(): CPU/memory per node group at minimum scale (preflight, sizing)
    databases  ensure_databases(), database_access() (its .finding for preflight), profile_conninfo()
    clickhouse the Altinity operator's Keeper and server installations, backups, setup Job, readiness
"""
