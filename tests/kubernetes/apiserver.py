"""A Kubernetes API server stand-in for the tests, on 127.0.0.1 (test code, not product).

No ``kube-apiserver`` can be had on these machines (see DESIGN). ``kmock``'s
label selectors ignore prefixed keys and its watches deliver only the first
ADDED event, and the backend needs both, so this is a small fake of our own
that speaks the real API's REST shape to the official ``kubernetes`` client:

* objects of the kinds in :data:`RESOURCES`, namespaced or not: create (with
  ``generateName``, ``stringData`` folded into ``data``), get, list, watch,
  delete, merge patch (and the ``status`` subresource), replace;
* label selectors (``k=v``, ``k!=v``, ``k``, ``!k``, ``k in (a,b)``,
  ``k notin (a,b)``) and field selectors (``metadata.name``,
  ``metadata.namespace``, ``status.phase``, ``spec.nodeName``);
* watches from a ``resourceVersion``, and their expiry as a real server has it:
  a watch ends (its timeout, or :meth:`ApiServer.expire_watches`), and resuming
  it from a version compacted away meanwhile gets 410 Gone, so the client must
  list again;
* graceful pod deletion, as the real server does it: a pod bound to a node gets
  ``deletionTimestamp`` and stays until its kubelet removes it (or a delete
  with grace 0); dependents (``ownerReferences``) of a removed object are
  deleted too (the garbage collector);
* bearer tokens and RBAC: a token is a user; a service account is authorized
  by the Roles its RoleBindings name, and anything else is refused with 403
  (the Role a test applies is the one ``k8s manifests`` ships);
* an audit log: every request, refused ones included, as an :class:`AuditEntry`
  (user, verb, path, namespace, name, the response's code), so a test can
  assert that a call was made, or not;
* admission: every created object is validated with ``kubernetes-validate
  --strict`` against the real schemas (422 otherwise).

The kubelet stand-in (:mod:`tests.kubernetes.kubelet`) uses the in-process
methods (:meth:`ApiServer.subscribe`, :meth:`ApiServer.patch_status`, ...).
Tests that run no pods play a kubelet's part with :mod:`tests.kubernetes.kubelet_steps`.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import datetime
import http.server
import json
import queue
import re
import ssl
import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import kubernetes_validate

#: (group, plural) -> (kind, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("", "pods"): ("Pod", True),
    ("", "secrets"): ("Secret", True),
    ("", "services"): ("Service", True),
    ("", "serviceaccounts"): ("ServiceAccount", True),
    ("", "configmaps"): ("ConfigMap", True),
    ("", "namespaces"): ("Namespace", False),
    ("apps", "deployments"): ("Deployment", True),
    ("rbac.authorization.k8s.io", "roles"): ("Role", True),
    ("rbac.authorization.k8s.io", "rolebindings"): ("RoleBinding", True),
}
KUBERNETES_VERSION = "1.37.0"
ADMIN = "admin"


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Request:
    """One API request, as an authorizer sees it."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str


@dataclass(frozen=True)
class AuditEntry:
    """One request and its answer, as a real server's audit log has it."""

    user: str
    #: get, list, watch, create, update, patch, delete; "" when the path was not understood.
    verb: str
    #: The request's method and path, query included: "DELETE /api/v1/namespaces/ns/pods/p".
    path: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    #: The response's status. A watch is logged when its stream starts (200), and again
    #: with 410 if the stream told it that its version had expired.
    code: int


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


# ------------------------------------------------------------------ selectors

_SET = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "("
        depth -= char == ")"
        current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_matcher(text: str) -> Any:
    """A predicate on a labels dict, for a label selector."""
    tests = []
    for term in _split_selector(text or ""):
        found = _SET.match(term)
        if found:
            key, op, values = found.group(1), found.group(2), found.group(3)
            allowed = {v.strip() for v in values.split(",") if v.strip()}
            if op == "in":
                tests.append(lambda labels, k=key, a=allowed: labels.get(k) in a)
            else:
                tests.append(lambda labels, k=key, a=allowed: labels.get(k) not in a)
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            absent = term[1:].strip()
            tests.append(lambda labels, k=absent: k not in labels)
        else:
            tests.append(lambda labels, k=term: k in labels)
    return lambda labels: all(test(labels) for test in tests)


def field_matcher(text: str) -> Any:
    tests = []
    for term in _split_selector(text or ""):
        negate = "!=" in term
        path, value = (s.strip() for s in term.replace("==", "=").replace("!=", "=").split("=", 1))
        if path not in ("metadata.name", "metadata.namespace", "status.phase", "spec.nodeName"):
            raise ApiError(400, "BadRequest", f"field label not supported: {path}")

        def test(obj: dict[str, Any], p: str = path, v: str = value, n: bool = negate) -> bool:
            node: Any = obj
            for part in p.split("."):
                node = (node or {}).get(part) if isinstance(node, dict) else None
            return (str(node or "") == v) != n

        tests.append(test)
    return lambda obj: all(test(obj) for test in tests)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ------------------------------------------------------------------ the store


class ApiServer:
    """The stand-in. ``start()`` serves it; ``url`` is where; ``close()`` stops it."""

    def __init__(self, *, tls: tuple[str, str] | None = None, validate: bool = True) -> None:
        self._tls = tls
        self._validate = validate
        self._lock = threading.Condition()
        self._objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self._events: list[tuple[int, str, str, str, dict[str, Any]]] = []
        self._compacted = 0
        self._version = 1
        self._subscribers: list[queue.Queue[tuple[str, dict[str, Any]]]] = []
        self._users: dict[str, str] = {}
        #: Every request, in the order their answers were decided.
        self.audit: list[AuditEntry] = []
        # Bumped by expire_watches(): every open watch ends when it changes.
        self._watch_generation = 0
        self.closing = False
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -------------------------------------------------------------- lifecycle

    def add_user(self, token: str, user: str) -> None:
        """``user`` is ``admin`` (everything), or ``system:serviceaccount:NS:NAME`` (RBAC)."""
        self._users[token] = user

    def start(self) -> str:
        server = _Server(("127.0.0.1", 0), _handler(self))
        server.daemon_threads = True
        if self._tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self._tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="apiserver", daemon=True)
        self._thread.start()
        scheme = "https" if self._tls else "http"
        self.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
        return self.url

    def close(self) -> None:
        with self._lock:
            self.closing = True
            self._lock.notify_all()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> ApiServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- in-process API

    def subscribe(self) -> queue.Queue[tuple[str, dict[str, Any]]]:
        """Every later event, of every kind: (type, object)."""
        feed: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        with self._lock:
            self._subscribers.append(feed)
        return feed

    def objects(self, resource: str, namespace: str = "", group: str = "") -> list[dict[str, Any]]:
        with self._lock:
            return [
                copy.deepcopy(o)
                for (g, r, ns, _), o in sorted(self._objects.items())
                if g == group and r == resource and (not namespace or ns == namespace)
            ]

    def get(self, resource: str, namespace: str, name: str, group: str = "") -> dict[str, Any]:
        with self._lock:
            found = self._objects.get((group, resource, namespace, name))
            if found is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            return copy.deepcopy(found)

    def apply(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Create ``doc`` (a manifest) as the admin would with ``kubectl apply``."""
        group, _, _ = doc["apiVersion"].rpartition("/")
        plural = next(p for (g, p), (k, _) in RESOURCES.items() if g == group and k == doc["kind"])
        namespace = doc.get("metadata", {}).get("namespace", "")
        return self.create(group, plural, namespace, doc)

    def patch_status(self, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        return self.patch("", "pods", namespace, name, {"status": status}, "status")

    def patch_spec(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.patch("", "pods", namespace, name, {"spec": spec}, "")

    def added(self, resource: str, namespace: str, group: str = "") -> list[str]:
        """The names of every object of ``resource`` ever created in ``namespace``, in order."""
        with self._lock:
            return [
                obj["metadata"]["name"]
                for _, kind, g, r, obj in self._events
                if kind == "ADDED"
                and g == group
                and r == resource
                and obj["metadata"].get("namespace", "") == namespace
            ]

    def compact(self) -> None:
        """Forget every event so far: a watch from an older version then gets 410 Gone."""
        with self._lock:
            if self._events:
                self._compacted = self._events[-1][0]
            self._events.clear()

    def expire_watches(self, meanwhile: Any = None) -> None:
        """What a real server does to a watch sooner or later: end it, while the cluster
        goes on (other objects change: the resource version moves on) and old versions
        are compacted away. A client that resumes from its last version then gets 410
        Gone and must list again. ``meanwhile()`` runs in the gap (with the lock held):
        a change no watch delivers, that only the fresh list shows."""
        with self._lock:
            self._watch_generation += 1
            if meanwhile is not None:
                meanwhile()
            self._next_version()  # a write elsewhere in the cluster
            self._compacted = self._version
            self._events.clear()
            self._lock.notify_all()

    def calls(self, user: str = "", **match: str | int) -> list[AuditEntry]:
        """The audit log's entries of ``user`` (any, if empty) whose fields equal ``match``."""
        return [
            entry
            for entry in list(self.audit)
            if (not user or entry.user == user)
            and all(getattr(entry, key) == value for key, value in match.items())
        ]

    # -------------------------------------------------------------- verbs

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def _record(self, kind: str, group: str, resource: str, obj: dict[str, Any]) -> None:
        """With the lock: log an event, wake watches, feed subscribers."""
        version = int(obj["metadata"]["resourceVersion"])
        self._events.append((version, kind, group, resource, copy.deepcopy(obj)))
        for feed in self._subscribers:
            feed.put((kind, copy.deepcopy(obj)))
        self._lock.notify_all()

    def create(
        self, group: str, resource: str, namespace: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        kind, namespaced = RESOURCES[(group, resource)]
        obj = copy.deepcopy(body)
        if obj.get("kind") not in (None, kind):
            raise ApiError(400, "BadRequest", f"the body is a {obj.get('kind')}, not a {kind}")
        obj.setdefault("kind", kind)
        obj.setdefault("apiVersion", f"{group}/v1" if group else "v1")
        metadata = obj.setdefault("metadata", {})
        if not metadata.get("name") and metadata.get("generateName"):
            metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
        name = metadata.get("name", "")
        if not name or not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
            raise ApiError(422, "Invalid", f"{kind} name {name!r} is not a DNS subdomain")
        if namespaced:
            if metadata.get("namespace", namespace) != namespace:
                raise ApiError(400, "BadRequest", "the namespace of the object does not match")
            metadata["namespace"] = namespace
        if self._validate:
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise ApiError(422, "Invalid", f"{kind} {name} is invalid: {exc}") from None
        if kind == "Secret" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for key, value in obj.pop("stringData").items():
                data[key] = base64.b64encode(value.encode()).decode()
        if kind == "Pod":
            obj.setdefault("status", {"phase": "Pending", "conditions": []})
            obj["spec"].setdefault("terminationGracePeriodSeconds", 30)
        with self._lock:
            key = (group, resource, namespace if namespaced else "", name)
            if key in self._objects:
                raise ApiError(409, "AlreadyExists", f'{resource} "{name}" already exists')
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now()
            metadata["resourceVersion"] = self._next_version()
            self._objects[key] = obj
            self._record("ADDED", group, resource, obj)
            return copy.deepcopy(obj)

    def patch(
        self,
        group: str,
        resource: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        subresource: str = "",
    ) -> dict[str, Any]:
        with self._lock:
            key = (group, resource, namespace, name)
            current = self._objects.get(key)
            if current is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            if subresource == "status":
                patch = {"status": patch.get("status", {})}
            else:
                patch = {k: v for k, v in patch.items() if k != "status"}
            updated = merge_patch(current, patch)
            updated["metadata"]["resourceVersion"] = self._next_version()
            self._objects[key] = updated
            self._record("MODIFIED", group, resource, updated)
            return copy.deepcopy(updated)

    def delete(
        self, group: str, resource: str, namespace: str, name: str, grace: int | None
    ) -> dict[str, Any]:
        with self._lock:
            key = (group, resource, namespace, name)
            obj = self._objects.get(key)
            if obj is None:
                raise ApiError(404, "NotFound", f'{resource} "{name}" not found')
            if resource == "pods" and group == "":
                bound = bool(obj["spec"].get("nodeName"))
                phase = obj.get("status", {}).get("phase")
                if grace is None:
                    grace = int(obj["spec"].get("terminationGracePeriodSeconds", 30))
                already = obj["metadata"].get("deletionGracePeriodSeconds")
                if bound and phase in ("Pending", "Running") and grace > 0:
                    if already is not None and already <= grace:
                        return copy.deepcopy(obj)
                    obj = copy.deepcopy(obj)
                    obj["metadata"]["deletionTimestamp"] = now()
                    obj["metadata"]["deletionGracePeriodSeconds"] = grace
                    obj["metadata"]["resourceVersion"] = self._next_version()
                    self._objects[key] = obj
                    self._record("MODIFIED", group, resource, obj)
                    return copy.deepcopy(obj)
            return self._remove(key)

    def _remove(self, key: tuple[str, str, str, str]) -> dict[str, Any]:
        """With the lock: remove an object, then its dependents (the garbage collector)."""
        obj = self._objects.pop(key)
        obj["metadata"]["resourceVersion"] = self._next_version()
        self._record("DELETED", key[0], key[1], obj)
        uid = obj["metadata"]["uid"]
        if key[1] == "namespaces":
            for other in [k for k in self._objects if k[2] == key[3]]:
                if other in self._objects:
                    self._remove(other)
        for other, child in list(self._objects.items()):
            owners = child["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners) and other in self._objects:
                group, resource, namespace, name = other
                self.delete(group, resource, namespace, name, None)
        return copy.deepcopy(obj)

    def remove_pod(self, namespace: str, name: str) -> None:
        """The kubelet's last word on a pod it stopped: the object goes."""
        with self._lock, contextlib.suppress(KeyError):
            self._remove(("", "pods", namespace, name))

    def list(
        self, group: str, resource: str, namespace: str, labels: str, fields: str
    ) -> dict[str, Any]:
        kind, _ = RESOURCES[(group, resource)]
        match_labels, match_fields = label_matcher(labels), field_matcher(fields)
        with self._lock:
            items = [
                copy.deepcopy(o)
                for (g, r, ns, _), o in sorted(self._objects.items())
                if g == group
                and r == resource
                and (not namespace or ns == namespace)
                and match_labels(o["metadata"].get("labels") or {})
                and match_fields(o)
            ]
            version = str(self._version)
        return {
            "kind": f"{kind}List",
            "apiVersion": f"{group}/v1" if group else "v1",
            "metadata": {"resourceVersion": version},
            "items": items,
        }

    def watch(
        self,
        group: str,
        resource: str,
        namespace: str,
        labels: str,
        fields: str,
        since: str,
        timeout: float,
        write: Any,
    ) -> bool:
        """Stream events after resourceVersion ``since`` ("" or "0": the current objects
        first) until ``timeout``, ``expire_watches()`` or ``close()``. False: ``since``
        was compacted away (the stream said 410 Gone)."""
        match_labels, match_fields = label_matcher(labels), field_matcher(fields)

        def wanted(g: str, r: str, obj: dict[str, Any]) -> bool:
            return (
                g == group
                and r == resource
                and (not namespace or obj["metadata"].get("namespace", "") == namespace)
                and match_labels(obj["metadata"].get("labels") or {})
                and match_fields(obj)
            )

        with self._lock:
            generation = self._watch_generation
            if since in ("", "0"):
                start = self._version
                initial = [
                    o for (g, r, _, _), o in sorted(self._objects.items()) if wanted(g, r, o)
                ]
            else:
                start = int(since)
                initial = []
                if start < self._compacted:
                    gone = ApiError(410, "Expired", f"too old resource version: {since}")
                    write({"type": "ERROR", "object": gone.status()})
                    return False
        for obj in initial:
            write({"type": "ADDED", "object": obj})
        deadline = threading.Event()
        timer = threading.Timer(timeout, lambda: (deadline.set(), self._wake()))
        timer.daemon = True
        timer.start()
        try:
            seen = start
            while True:
                with self._lock:
                    while (
                        not self.closing
                        and not deadline.is_set()
                        and generation == self._watch_generation
                        and not any(v > seen for v, *_ in self._events[-1:])
                    ):
                        self._lock.wait(1.0)
                    if self.closing or deadline.is_set() or generation != self._watch_generation:
                        return True
                    fresh = [e for e in self._events if e[0] > seen]
                for version, kind, g, r, obj in fresh:
                    seen = version
                    if wanted(g, r, obj):
                        write({"type": kind, "object": obj})
        finally:
            timer.cancel()

    def _wake(self) -> None:
        with self._lock:
            self._lock.notify_all()

    # -------------------------------------------------------------- authorization

    def authorize(self, request: Request) -> None:
        if request.user == ADMIN:
            return
        parts = request.user.split(":")
        if len(parts) != 4 or parts[:2] != ["system", "serviceaccount"]:
            raise ApiError(403, "Forbidden", f"user {request.user} may do nothing")
        sa_namespace, sa_name = parts[2], parts[3]
        resource = request.resource + (f"/{request.subresource}" if request.subresource else "")
        for binding in self.objects("rolebindings", request.namespace, "rbac.authorization.k8s.io"):
            subjects = binding.get("subjects") or []
            if not any(
                s.get("kind") == "ServiceAccount"
                and s.get("name") == sa_name
                and s.get("namespace", binding["metadata"]["namespace"]) == sa_namespace
                for s in subjects
            ):
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") != "Role":
                continue
            with contextlib.suppress(ApiError):
                role = self.get(
                    "roles", request.namespace, ref["name"], "rbac.authorization.k8s.io"
                )
                for rule in role.get("rules") or []:
                    if (
                        _has(rule.get("apiGroups"), request.group)
                        and _has(rule.get("resources"), resource)
                        and _has(rule.get("verbs"), request.verb)
                        and (not rule.get("resourceNames") or request.name in rule["resourceNames"])
                    ):
                        return
        raise ApiError(
            403,
            "Forbidden",
            f'{request.resource} is forbidden: User "{request.user}" cannot {request.verb} '
            f'resource "{resource}" in API group "{request.group}" in the namespace '
            f'"{request.namespace}"',
        )


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up (a closed watch) is no error of the stand-in's


def _has(values: list[str] | None, value: str) -> bool:
    return bool(values) and ("*" in values or value in values)


# ------------------------------------------------------------------ HTTP


_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/v1)(?P<rest>/.*)?$")


def _handler(api: ApiServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def _body(self) -> Any:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return None
            try:
                return json.loads(raw)
            except ValueError:
                raise ApiError(400, "BadRequest", "the body is not JSON") from None

        def _audit(self, code: int) -> None:
            seen = self._seen
            api.audit.append(
                AuditEntry(
                    user=seen.user if seen else self._user,
                    verb=seen.verb if seen else "",
                    path=f"{self.command} {self.path}",
                    group=seen.group if seen else "",
                    resource=seen.resource if seen else "",
                    subresource=seen.subresource if seen else "",
                    namespace=seen.namespace if seen else "",
                    name=seen.name if seen else "",
                    code=code,
                )
            )

        def _send(self, code: int, body: dict[str, Any]) -> None:
            self._audit(code)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _serve(self, method: str) -> None:
            self._seen: Request | None = None
            self._user = "system:anonymous"
            try:
                self._route(method)
            except ApiError as exc:
                with contextlib.suppress(OSError):
                    self._send(exc.code, exc.status())
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _route(self, method: str) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            body = self._body() if method in ("POST", "PATCH", "PUT", "DELETE") else None
            auth = self.headers.get("Authorization", "")
            scheme, _, credential = auth.partition(" ")
            user = api._users.get(credential.strip()) if scheme.lower() == "bearer" else None
            if user is None:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self._user = user
            found = _PATH.match(url.path)
            if url.path in ("/api", "/apis", "/version") or found is None:
                if url.path == "/version":
                    self._send(200, {"major": "1", "minor": "37", "gitVersion": "v1.37.0"})
                    return
                raise ApiError(404, "NotFound", f"the server could not find {url.path}")
            group = found.group("group") or ""
            parts = [p for p in (found.group("rest") or "").split("/") if p]
            namespace = name = subresource = ""
            if parts[:1] == ["namespaces"] and len(parts) >= 3:
                namespace, parts = parts[1], parts[2:]
            resource = parts[0] if parts else ""
            if len(parts) > 1:
                name = parts[1]
            if len(parts) > 2:
                subresource = parts[2]
            if (group, resource) not in RESOURCES:
                raise ApiError(404, "NotFound", f"the server could not find resource {resource}")
            watching = query.get("watch") in ("true", "1")
            verb = {
                "GET": "get" if name else ("watch" if watching else "list"),
                "POST": "create",
                "DELETE": "delete",
                "PATCH": "patch",
                "PUT": "update",
            }[method]
            self._seen = Request(user, verb, group, resource, subresource, namespace, name)
            api.authorize(self._seen)
            if verb == "get":
                self._send(200, api.get(resource, namespace, name, group))
            elif verb == "list":
                labels, fields = query.get("labelSelector", ""), query.get("fieldSelector", "")
                self._send(200, api.list(group, resource, namespace, labels, fields))
            elif verb == "watch":
                self._watch(group, resource, namespace, query)
            elif verb == "create":
                self._send(201, api.create(group, resource, namespace, body or {}))
            elif verb == "delete":
                raw = query.get("gracePeriodSeconds")
                if raw is None and isinstance(body, dict):
                    raw = body.get("gracePeriodSeconds")
                grace = int(raw) if raw is not None else None
                self._send(200, api.delete(group, resource, namespace, name, grace))
            elif verb == "patch":
                kind = self.headers.get("Content-Type", "")
                if "json-patch" in kind or not isinstance(body, dict):
                    raise ApiError(415, "UnsupportedMediaType", "only merge patches here")
                self._send(200, api.patch(group, resource, namespace, name, body, subresource))
            else:  # update: a replace is a patch with the whole object here
                self._send(
                    200, api.patch(group, resource, namespace, name, body or {}, subresource)
                )

        def _watch(self, group: str, resource: str, namespace: str, query: dict[str, str]) -> None:
            self._audit(200)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

            def write(event: dict[str, Any]) -> None:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            current = api.watch(
                group,
                resource,
                namespace,
                query.get("labelSelector", ""),
                query.get("fieldSelector", ""),
                query.get("resourceVersion", ""),
                float(query.get("timeoutSeconds") or 300),
                write,
            )
            if not current:
                self._audit(410)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler


def kubeconfig(url: str, token: str, namespace: str, ca: str | None = None) -> dict[str, Any]:
    """A kubeconfig for ``url`` with ``token`` (write it as JSON: YAML is a superset)."""
    cluster: dict[str, Any] = {"server": url}
    if ca:
        cluster["certificate-authority"] = ca
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "stand-in", "cluster": cluster}],
        "users": [{"name": "user", "user": {"token": token}}],
        "contexts": [
            {
                "name": "stand-in",
                "context": {"cluster": "stand-in", "user": "user", "namespace": namespace},
            }
        ],
        "current-context": "stand-in",
    }
