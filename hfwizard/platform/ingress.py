"""Ingress values per target: EKS (AWS Load Balancer Controller, class alb), AKS (application gateway), GKE (the
highflame-ingress chart with managed certificates), and any other cluster (the profile's class).

All six hosts come from `ingress.domain`; each service routes its own paths on its host.
"""

from __future__ import annotations

from typing import Any

from hfwizard.platform.catalog import Catalog, Service
from hfwizard.platform.facts import domain
from hfwizard.platform.secretsets import TLS_SECRET
from hfwizard.profile import Cloud, InstallProfile

GKE_INGRESS_RELEASE = "highflame-ingress"


def routed_by_chart(profile: InstallProfile) -> bool:
    """True where each service's chart makes its own Ingress (every target but GKE, which shares one)."""
    return profile.ingress.enabled and profile.target.cloud is not Cloud.GCP


def service_type(profile: InstallProfile, svc: Service) -> str:
    # The ALB (target-type instance) and GCE ingress reach backends through node ports, as Highflame's own
    # values do; everything else stays inside the cluster.
    if svc.routes and profile.ingress.enabled and profile.target.cloud in (Cloud.AWS, Cloud.GCP):
        return "NodePort"
    return "ClusterIP"


def service_ingress(profile: InstallProfile, catalog: Catalog, name: str) -> dict[str, Any]:
    """The chart's `ingress` values for one service (disabled when it has no route or ingress is off)."""
    svc = catalog.services[name]
    if not svc.routes or not routed_by_chart(profile):
        return {"enabled": False}
    release = catalog.release_name(name)
    cloud = profile.target.cloud
    if cloud is Cloud.AWS:
        values = _alb(profile, svc)
    elif cloud is Cloud.AZURE:
        values = _appgw(profile, svc, release)
    else:
        values = {"className": profile.ingress.class_name, "annotations": {}}
        if profile.ingress.tls.enabled:
            _tls_secret(profile, svc_hosts(profile, svc), release, values)
    values["annotations"].update(profile.ingress.annotations)
    values["enabled"] = True
    values["hosts"] = [{"host": f"{r.host}.{domain(profile)}",
                        "paths": [{"path": p, "pathType": "Prefix"} for p in r.paths]} for r in svc.routes]
    return values


def _alb(profile: InstallProfile, svc: Service) -> dict[str, Any]:
    aws = profile.ingress.aws
    cluster = profile.target.cluster or profile.metadata.name
    prefix = "alb.ingress.kubernetes.io/"
    ann = {
        "scheme": aws.scheme,
        "target-type": "instance",
        "healthcheck-protocol": "HTTP",
        "healthcheck-port": "traffic-port",
        "healthcheck-path": svc.probes.readiness,
        "healthcheck-interval-seconds": "15",
        "healthcheck-timeout-seconds": "5",
        "healthy-threshold-count": "2",
        "unhealthy-threshold-count": "2",
        "success-codes": "200",
        "group.name": f"{cluster}-group",
        "group.order": "1",
        "load-balancer-name": aws.load_balancer_name or f"{cluster}-alb-ingress"[:32],
        "load-balancer-attributes": "idle_timeout.timeout_seconds=300",
    }
    tls = profile.ingress.tls
    if tls.enabled:
        ann["listen-ports"] = '[{"HTTP": 80}, {"HTTPS": 443}]'
        ann["ssl-redirect"] = "443"
        if tls.acm_certificate_arn:
            ann["certificate-arn"] = tls.acm_certificate_arn
    else:
        ann["listen-ports"] = '[{"HTTP": 80}]'
    # Without subnets or groups the controller discovers tagged subnets and makes its own security group.
    if aws.subnets:
        ann["subnets"] = ", ".join(aws.subnets)
    if aws.security_groups:
        ann["security-groups"] = ", ".join(aws.security_groups)
    return {"className": "alb", "annotations": {prefix + k: v for k, v in ann.items()}}


def _appgw(profile: InstallProfile, svc: Service, release: str) -> dict[str, Any]:
    az = profile.ingress.azure
    prefix = "appgw.ingress.kubernetes.io/"
    tls = profile.ingress.tls
    ann = {
        prefix + "use-private-ip": "true" if az.private_ip else "false",
        prefix + "ssl-redirect": "true" if tls.enabled else "false",
        prefix + "backend-protocol": "http",
        prefix + "request-timeout": "300",
        prefix + "health-probe-path": svc.probes.readiness,
        prefix + "health-probe-status-codes": "200",
        prefix + "health-probe-interval": "15",
        prefix + "health-probe-timeout": "5",
        prefix + "health-probe-unhealthy-threshold": "2",
    }
    values: dict[str, Any] = {"className": "azure-application-gateway", "annotations": ann}
    if tls.enabled and az.ssl_certificate:
        ann[prefix + "appgw-ssl-certificate"] = az.ssl_certificate
    elif tls.enabled:
        _tls_secret(profile, svc_hosts(profile, svc), release, values)
    return values


def _tls_secret(profile: InstallProfile, hosts: list[str], release: str, values: dict[str, Any]) -> None:
    tls = profile.ingress.tls
    if tls.existing_secret:
        secret = tls.existing_secret
    elif tls.certificate:
        secret = TLS_SECRET
    else:
        secret = f"{release}-tls"  # cert-manager fills it (issuer), or the controller's default certificate
    if tls.issuer:
        values["annotations"]["cert-manager.io/cluster-issuer"] = tls.issuer
    values["tls"] = [{"hosts": hosts, "secretName": secret}]


def svc_hosts(profile: InstallProfile, svc: Service) -> list[str]:
    return [f"{r.host}.{domain(profile)}" for r in svc.routes]


def gke_backend_config(profile: InstallProfile, svc: Service) -> dict[str, Any]:
    """GKE: the service's BackendConfig (health check on its readiness path, Cloud Armor if set)."""
    item: dict[str, Any] = {
        "name": "default",
        "timeoutSec": 300,
        "healthCheck": {"checkIntervalSec": 15, "timeoutSec": 5, "healthyThreshold": 2, "unhealthyThreshold": 2,
                        "type": "HTTP", "requestPath": svc.probes.readiness, "port": svc.probes.port or svc.port},
        "securityPolicy": {"enabled": bool(profile.ingress.gcp.security_policy),
                           "name": profile.ingress.gcp.security_policy or ""},
    }
    return {"backendConfigs": {"enabled": True, "items": [item]}}


def gke_ingress_values(profile: InstallProfile, catalog: Catalog, enabled: list[str]) -> dict[str, Any]:
    """Values of the shared GKE ingress (highflame-ingress chart) routing every enabled service's paths."""
    gcp = profile.ingress.gcp
    tls = profile.ingress.tls
    by_host: dict[str, list[dict[str, Any]]] = {h: [] for h in catalog.hosts}
    for name in enabled:
        svc = catalog.services[name]
        for route in svc.routes:
            by_host[route.host] += [{"path": p, "pathType": "Prefix", "serviceName": catalog.release_name(name),
                                     "servicePort": svc.port} for p in route.paths]
    hosts: list[dict[str, Any]] = [{"host": f"{h}.{domain(profile)}", "paths": paths}
                                   for h, paths in by_host.items() if paths]
    ann: dict[str, str] = {"kubernetes.io/ingress.class": "gce",
                           "kubernetes.io/ingress.allow-http": "false" if tls.enabled else "true"}
    values: dict[str, Any] = {"fullnameOverride": GKE_INGRESS_RELEASE}
    gce: dict[str, Any] = {"frontendConfig": {"enabled": tls.enabled,
                                              "sslPolicy": {"enabled": bool(gcp.ssl_policy),
                                                            "name": gcp.ssl_policy or ""}}}
    if tls.enabled:
        ann["networking.gke.io/v1beta1.FrontendConfig"] = GKE_INGRESS_RELEASE
    if tls.enabled and not (tls.existing_secret or tls.certificate):
        certs = [{"certName": f"highflame-{str(h['host']).split('.', 1)[0]}-cert", "domain": str(h["host"])}
                 for h in hosts]
        gce["uniqueManagedCertificate"] = {"enabled": True, "certificateList": certs}
        ann["networking.gke.io/managed-certificates"] = ", ".join(c["certName"] for c in certs)
    if gcp.static_ip_name:
        ann["kubernetes.io/ingress.global-static-ip-name"] = gcp.static_ip_name
    ann.update(profile.ingress.annotations)
    ingress: dict[str, Any] = {"enabled": True, "annotations": ann, "hosts": hosts}
    if tls.enabled and (tls.existing_secret or tls.certificate):
        ingress["tls"] = [{"hosts": [h["host"] for h in hosts], "secretName": tls.existing_secret or TLS_SECRET}]
    values["gceIngress"] = gce
    values["ingress"] = ingress
    return values
