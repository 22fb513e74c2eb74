from reuse_runtime.controller.router import RouteCandidate, pick_replica


def test_prefers_warm_code_then_least_loaded() -> None:
    cold_idle = RouteCandidate("cold", free=4, capacity=4, warm=False)
    warm_busy = RouteCandidate("warm-busy", free=1, capacity=4, warm=True)
    warm_idle = RouteCandidate("warm-idle", free=3, capacity=4, warm=True)
    assert pick_replica([cold_idle, warm_busy, warm_idle]) == "warm-idle"
    assert pick_replica([cold_idle, warm_busy]) == "warm-busy"
    assert pick_replica([cold_idle, RouteCandidate("cold2", 2, 4, False)]) == "cold"


def test_never_routes_to_a_full_replica() -> None:
    full = RouteCandidate("full", free=0, capacity=2, warm=True)
    assert pick_replica([full]) is None
    assert pick_replica([]) is None
