"""Container logs of the emulated cluster: what the player's containers write, served as `pods/{name}/log`.

A real API server validates the request and the container name, then hands it to the node's kubelet,
which picks the container instance from the pod's status (running, terminated, or the last terminated
one for `previous`) and reads its log file. Here the controller player writes each container
instance's lines when it starts (a few start-up lines, the lines planted through the pod template's
`sandbox.hfwizard.io/log` / `sandbox.hfwizard.io/log.<container>` annotations, then how it ended), and
`pod_log` answers the request from the pod's status as the two would, errors worded as theirs.
`follow` is answered with what is written so far, as for a container that has exited.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping

import attrs

from hfwizard.sandbox.emulator.api import JSON, ApiError, not_found
from hfwizard.sandbox.emulator.store import Store

__all__ = ["LOG_ANNOTATION", "ContainerLogs", "pod_log"]

LOG_ANNOTATION = "sandbox.hfwizard.io/log"
"""On a pod template: lines (one per line of the value) every container writes after starting; with
`.<container>` appended to the key, only that container."""
_KEPT_INSTANCES = 2  # the current and the previous instance of a container, as the kubelet keeps them
_MAX_LINES = 5000  # per instance: a long-running sandbox must not grow without bound
_Line = tuple[datetime.datetime, str]


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


@attrs.define
class ContainerLogs:
    """Lines per container instance, keyed (namespace, pod, container) -> [(container id, lines)]."""

    _logs: dict[tuple[str | None, str, str], list[tuple[str, list[_Line]]]] = attrs.field(factory=dict)

    def lines(self, namespace: str | None, pod: str, container: str, container_id: str) -> list[_Line] | None:
        for cid, lines in self._logs.get((namespace, pod, container), []):
            if cid == container_id:
                return lines
        return None

    def write(self, namespace: str | None, pod: str, container: str, container_id: str, text: list[str],
              at: datetime.datetime | None = None) -> None:
        """Append `text` to one instance's log (a new instance pushes out all but the one before it)."""
        when = at or _now()
        instances = self._logs.setdefault((namespace, pod, container), [])
        found = self.lines(namespace, pod, container, container_id)
        if found is None:
            found = []
            instances.append((container_id, found))
            del instances[:-_KEPT_INSTANCES]
        found.extend((when, line) for line in text)
        del found[:-_MAX_LINES]

    def plant(self, namespace: str | None, pod: str, container: str, text: list[str]) -> None:
        """Lines written now by the latest instance of a container (tests plant what an app would log).
        Appending is one list operation, so a test thread may call it while the emulator's loop serves."""
        instances = self._logs.get((namespace, pod, container))
        if not instances:
            raise KeyError(f"container {container} of pod {namespace}/{pod} has not started")
        self.write(namespace, pod, container, instances[-1][0], text)

    def forget_pod(self, namespace: str | None, pod: str) -> None:
        """A deleted pod's logs go with it, as on a node."""
        for key in [k for k in self._logs if k[:2] == (namespace, pod)]:
            del self._logs[key]

    def record_starts(self, pod: JSON) -> None:
        """Write the start-up lines of every container instance of `pod` that has run and has no log yet."""
        meta, status = pod["metadata"], pod.get("status") or {}
        annotations = meta.get("annotations") or {}
        spec_of = {c.get("name"): c for c in _containers(pod.get("spec") or {})}
        for cs in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
            for cid, ending in _instances(cs):
                name = cs.get("name", "")
                if self.lines(meta.get("namespace"), meta["name"], name, cid) is not None:
                    continue
                text = [*_start_up(spec_of.get(name) or {}), *_planted(annotations, name), ending]
                self.write(meta.get("namespace"), meta["name"], name, cid, text)


def _containers(spec: JSON) -> list[JSON]:
    return [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]


def _instances(cs: JSON) -> Iterator[tuple[str, str]]:
    """(container id, last line) of each instance a container status shows has run."""
    state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated")
    if last and last.get("containerID"):
        reason = ((state.get("waiting") or {}).get("message")) or last.get("reason") or "exited"
        yield last["containerID"], f"fatal: {reason} (exit code {last.get('exitCode', 1)})"
    if "running" in state and cs.get("containerID"):
        yield cs["containerID"], "ready"
    done = state.get("terminated")
    if done and done.get("containerID"):
        yield done["containerID"], f"exiting: {done.get('reason') or 'done'} (exit code {done.get('exitCode', 0)})"


def _start_up(container: JSON) -> list[str]:
    ports = [str(p.get("containerPort")) for p in container.get("ports") or [] if p.get("containerPort")]
    # Counts only: the values of a container's environment have no place in its log.
    env, sources = len(container.get("env") or []), len(container.get("envFrom") or [])
    return [f"starting {container.get('name', 'main')} (image {container.get('image', '')})",
            f"environment: {env} variables, {sources} sources",
            *([f"listening on :{', :'.join(ports)}"] if ports else [])]


def _planted(annotations: Mapping[str, str], container: str) -> list[str]:
    text = [annotations.get(LOG_ANNOTATION) or "", annotations.get(f"{LOG_ANNOTATION}.{container}") or ""]
    return [line for block in text for line in block.splitlines()]


# ---- GET /api/v1/namespaces/{ns}/pods/{name}/log ------------------------------------------------


@attrs.frozen
class _Options:
    container: str
    previous: bool
    timestamps: bool
    tail_lines: int | None
    limit_bytes: int | None
    since: datetime.datetime | None


def _bool(query: Mapping[str, str], key: str) -> bool:
    raw = query.get(key, "false")
    if raw in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    if raw in ("0", "f", "F", "false", "FALSE", "False", ""):
        return False
    raise ApiError(400, "BadRequest", f'strconv.ParseBool: parsing "{raw}": invalid syntax')


def _int(query: Mapping[str, str], key: str) -> int | None:
    raw = query.get(key)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "BadRequest", f'strconv.ParseInt: parsing "{raw}": invalid syntax') from None


def _options(name: str, query: Mapping[str, str]) -> _Options:
    """The request's PodLogOptions, checked as the API server's validation checks them."""
    tail, limit, since_s = _int(query, "tailLines"), _int(query, "limitBytes"), _int(query, "sinceSeconds")
    since_time = query.get("sinceTime")
    problems = []
    if tail is not None and tail < 0:
        problems.append(f"tailLines: Invalid value: {tail}: must be greater than or equal to 0")
    if limit is not None and limit < 1:
        problems.append(f"limitBytes: Invalid value: {limit}: must be greater than 0")
    if since_s is not None and since_time is not None:
        problems.append("<nil>: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
    elif since_s is not None and since_s < 1:
        problems.append(f"sinceSeconds: Invalid value: {since_s}: must be greater than 0")
    if problems:
        listed = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        raise ApiError(422, "Invalid", f'PodLogOptions "{name}" is invalid: {listed}',
                       {"name": name, "kind": "PodLogOptions"})
    since = None
    if since_s is not None:
        since = _now() - datetime.timedelta(seconds=since_s)
    elif since_time is not None:
        try:
            since = datetime.datetime.fromisoformat(since_time.replace("Z", "+00:00"))
        except ValueError:
            raise ApiError(400, "BadRequest", f'parsing time "{since_time}" as RFC3339: cannot parse') from None
    return _Options(query.get("container", ""), _bool(query, "previous"), _bool(query, "timestamps"), tail, limit,
                    since)


def _container(pod: JSON, name: str, wanted: str) -> str:
    """The container a request means, or the API server's 400 (its words)."""
    spec = pod.get("spec") or {}
    names = [c.get("name", "") for c in spec.get("containers") or []]
    inits = [c.get("name", "") for c in spec.get("initContainers") or []]
    if not wanted:
        if len(names) == 1:
            return names[0]
        if not names:
            raise ApiError(400, "BadRequest", f"a container name must be specified for pod {name}")
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
        if inits:
            message += f" or one of the init containers: [{' '.join(inits)}]"
        raise ApiError(400, "BadRequest", message)
    if wanted not in names and wanted not in inits:
        raise ApiError(400, "BadRequest", f"container {wanted} is not valid for pod {name}")
    return wanted


def _instance(pod: JSON, name: str, container: str, previous: bool) -> str:
    """The container id whose log the kubelet would read (its validateContainerLogStatus), or its 400."""
    status = pod.get("status") or {}
    found = [cs for cs in [*(status.get("containerStatuses") or []), *(status.get("initContainerStatuses") or [])]
             if cs.get("name") == container]
    if not found:
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is not available')
    cs = found[0]
    state, last = cs.get("state") or {}, (cs.get("lastState") or {}).get("terminated")
    if previous:
        if not last or not last.get("containerID"):
            raise ApiError(400, "BadRequest", f'previous terminated container "{container}" in pod "{name}" not found')
        return str(last["containerID"])
    if "running" in state:
        return str(cs.get("containerID") or "")
    done = state.get("terminated")
    if done or last:
        cid = (done or {}).get("containerID") or (last or {}).get("containerID")
        if not cid:
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is terminated')
        return str(cid)
    waiting = state.get("waiting")
    if waiting is not None:
        reason = {"ErrImagePull": "image can't be pulled",
                  "ImagePullBackOff": "trying and failing to pull image"}.get(waiting.get("reason", ""),
                                                                              waiting.get("reason", ""))
        raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {reason}')
    raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start - no logs yet')


def pod_log(store: Store, logs: ContainerLogs, namespace: str | None, name: str, query: Mapping[str, str]) -> bytes:
    """The body of `GET .../pods/{name}/log` (text), or the ApiError a cluster answers with."""
    options = _options(name, query)
    pod = store.get_object("v1", "Pod", namespace, name)
    if pod is None:
        info = store.catalogue.get("", "v1", "pods")
        assert info is not None
        raise not_found(info, name)
    container = _container(pod, name, options.container)
    if not (pod.get("spec") or {}).get("nodeName"):
        return b""  # not scheduled: the API server has no kubelet to ask and answers with nothing
    lines = logs.lines(namespace, name, container, _instance(pod, name, container, options.previous)) or []
    if options.since is not None:
        lines = [(at, text) for at, text in lines if at >= options.since]
    if options.tail_lines is not None:
        lines = lines[len(lines) - options.tail_lines:] if options.tail_lines else []
    stamp = "%Y-%m-%dT%H:%M:%S.%fZ"
    body = "".join(f"{at.strftime(stamp)} {text}\n" if options.timestamps else f"{text}\n" for at, text in lines)
    data = body.encode()
    return data[: options.limit_bytes] if options.limit_bytes is not None else data
