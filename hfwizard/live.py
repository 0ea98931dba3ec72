"""Cheap live checks a screen runs in place (a host resolves, HTTPS answers) and the answer a failure names."""

from __future__ import annotations


def resolves(host: str, timeout: float = 3.0) -> tuple[bool, str]:
    """A cheap live check for a screen: does `host` resolve here (DNS or hosts file)? Never raises."""
    import concurrent.futures
    import socket

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        infos = pool.submit(socket.getaddrinfo, host, None).result(timeout=timeout)
    except concurrent.futures.TimeoutError:
        return False, f"{host} did not resolve within {timeout:g} s (DNS slow or unreachable from here)"
    except OSError as exc:
        return False, f"{host} does not resolve from here ({exc.strerror or exc}); check the name, or the VPN"
    finally:
        pool.shutdown(wait=False)
    addrs = sorted({str(i[4][0]) for i in infos})
    return True, f"{host} resolves to {', '.join(addrs[:3])}"


def answers_https(host: str, timeout: float = 5.0) -> tuple[bool, str]:
    """A cheap live check: does https://`host`/ answer at all (any HTTP status)? Never raises."""
    import http.client
    import socket
    import ssl

    conn = http.client.HTTPSConnection(host, timeout=timeout, context=ssl.create_default_context())
    try:
        conn.request("HEAD", "/")
        status = conn.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        # The same words for the same cause on every machine (resolver messages differ).
        words: dict[type[Exception], str] = {
            socket.gaierror: "the name does not resolve", TimeoutError: f"no answer within {timeout:g} s",
            ConnectionRefusedError: "connection refused", ssl.SSLError: "TLS failed"}
        why = words.get(type(exc), type(exc).__name__)
        return False, f"https://{host}/ does not answer from here ({why}); check the key, the proxy or the firewall"
    finally:
        conn.close()
    return True, f"https://{host}/ answers (HTTP {status})"


def port_answers(host: str, port: int, timeout: float = 3.0) -> tuple[bool, str]:
    """A cheap live check: does `host`:`port` take a TCP connection from here (a Redis node)? Never raises."""
    import socket

    where = f"{host}:{port}"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except socket.gaierror:
        return False, f"{host} does not resolve from here; check the name, or the VPN"
    except ConnectionRefusedError:
        return False, f"{where} refused the connection (nothing listens on that port); check the port"
    except TimeoutError:
        return False, f"{where} did not answer within {timeout:g} s (a firewall, or not reachable from here)"
    except OSError as exc:
        return False, f"{where} cannot be reached from here ({exc.strerror or exc})"
    return True, f"{where} answers"


# Words in a failure that name what the operator answered, in the order they are tried, with the field
# to edit (Edit answer / plain mode's "change an answer"). The first profile path the message names wins.
_FAULTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("tls secret", "tls entry", "certificate", "tls"), "ingress.tls.existingSecret"),
    (("ingress", "domain"), "ingress.domain"),
    (("clerk",), "clerk.publishableKey"),
    (("postgres",), "postgres.host"),
    (("redis",), "redis.endpoints"),
    (("bucket", "backup"), "clickhouse.backup.bucket"),
    (("insufficient cpu", "insufficient memory", "unschedulable", "node"), "sizing.nodes.count"),
)


def answer_at_fault(*texts: str) -> str | None:
    """The profile path a failure (error, remedy, the causes the engine found) points at, for "Edit answer";
    None when it names none."""
    from hfwizard.questions import all_questions

    joined = " ".join(texts)
    for q in all_questions():
        if q.path in joined:
            return q.path
    low = joined.lower()
    for words, path in _FAULTS:
        if any(w in low for w in words):
            return path
    return None
