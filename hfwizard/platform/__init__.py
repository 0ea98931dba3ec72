"""The real Highflame platform: release catalogs, profile -> Helm values and Secret specs, chart sources, databases.

Modules (import them directly; this package imports nothing at start so `profile.py` may use `settings`):
    catalog    Catalog, load_catalog(version), available_versions(), latest()
    settings   the profile sections the real platform adds (node groups, license, model, identity, ...)
    values     service_releases(), ingress_release(), prerequisite_secrets(), env_secrets(), databases()
    secretspec SecretSpec / SecretEntry and how a spec becomes Secret data (materialize, generate)
    charts     ChartSource: repository, mirror folder, local chart, OCI; pull_to(dir, catalog)
    databases  ensure_databases(), creation_finding() for preflight
"""
