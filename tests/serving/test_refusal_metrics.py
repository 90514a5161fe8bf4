"""Requests the guard refuses before routing (503, 413) are counted under their route template."""

from __future__ import annotations


def _count(text: str, endpoint: str, method: str, status: int) -> float:
    """The value of ``engine_http_requests_total`` for one label set (0 when absent)."""
    labels = f'{{endpoint="{endpoint}",method="{method}",status="{status}"}}'
    for line in text.splitlines():
        if line.startswith("engine_http_requests_total" + labels):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_503_and_413_are_labelled_with_the_route_template(make_client):
    client = make_client(max_concurrency=1, max_body_mb=0.01)
    limit = client.app.state.limit
    assert limit.try_acquire()  # one request in flight: the next is refused
    try:
        assert client.get("/v1/scores/latest").status_code == 503
        assert client.post("/v1/signals", json={"strategy": "momentum"}).status_code == 503
    finally:
        limit.release()
    window = [[0.25] * 17] * 20
    assert client.post("/v1/score", json={"sequences": [window] * 20}).status_code == 413
    assert client.post("/no-such-route", content=b"x" * 20_000).status_code == 413
    text = client.get("/metrics").text
    assert _count(text, "/v1/scores/latest", "GET", 503) == 1.0
    assert _count(text, "/v1/signals", "POST", 503) == 1.0
    assert _count(text, "/v1/score", "POST", 413) == 1.0
    assert _count(text, "unmatched", "POST", 413) == 1.0
    assert "/no-such-route" not in text
