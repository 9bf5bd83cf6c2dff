import json, httpx
from loopml.store.predictions.policy import KEY_ENV
from tests.serving.predlog_helpers import make_models

def test_probe(auth_server, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "a-redaction-key-of-32-characters")
    url, store, tokens = auth_server
    make_models(store, "churn")
    api = f"{url}/api/v1"
    def call(method, path, role, **kw):
        h = {} if role is None else {"Authorization": f"Bearer {tokens[role]}"}
        h.update(kw.pop("headers", {}))
        return httpx.request(method, api + path, headers=h, **kw)
    for role in ("viewer", "editor", None):
        for content in (b"x" * (20 * 1024 * 1024), b"[" * 100000, b'{"key": 5}'):
            r = call("POST", "/predictions/erase", role, content=content)
            print(role, len(content), r.status_code, r.text[:150])
        r = call("PUT", "/predictions/policies/churn", role, content=b"{}", headers={"content-length": "9" * 5000})
        print("cl", role, r.status_code, r.text[:150])
    secret = "alice@example.com-" + "z" * 250
    for body in ({"key": secret, "actor": "a"}, {"key": 5, "actor": "a"}, {"key": "", "actor": "a"}, {"key": "k", "model": "no such", "actor": "a"},
                 {"key": "k", "model": "churn", "actor": "a"}, {"key": "k", "model": "ghost", "actor": "a"}, {"key": "alice", "actor": "a", "extra": 1}, [], "x", {"key": ["alice@example.com"], "actor": "a"}):
        r = call("POST", "/predictions/erase", "admin", json=body)
        print("erase", str(body)[:60], r.status_code, r.text[:300])
    for body in ({"redact": {"email": "blur"}, "actor": "a"}, {"redact": {"a\n": "drop"}, "actor": "a"}, {"redact": {"x": "truncate:0"}, "actor": "a"},
                 {"redact": {"x": 5}, "actor": "a"}, {"redact": [], "actor": "a"}, {"redact": {"u": "drop"}, "entity_key": "u", "actor": "a"},
                 {"redact": {str(i): "drop" for i in range(1001)}, "actor": "a"}, {"entity_key": "", "actor": "a"}, {"redact": {"s": "hash"}, "actor": "a"}):
        r = call("PUT", "/predictions/policies/churn", "admin", json=body)
        print("policy", str(body)[:60], r.status_code, r.text[:300])
    for path in ("/predictions/policies/ghost", "/predictions/policies/%00", "/predictions/policies/" + "a" * 300, "/predictions/policies/..%2F..%2Fetc"):
        print(path[:40], call("GET", path, "viewer").status_code, call("PUT", path, "admin", json={"actor": "a"}).text[:200])
    for ev in store.audit.list_events(action="predictions.*"):
        print(ev)
