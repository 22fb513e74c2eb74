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


def test_prefetch_room_counts_only_when_no_replica_has_a_free_slot() -> None:
    # "a" is warm but full: its room is its prefetch only (2 of 2). "b" is cold, one slot free.
    full_warm = RouteCandidate("a", free=2, capacity=20, warm=True, prefetch=2)
    cold_free = RouteCandidate("b", free=3, capacity=20, warm=False, prefetch=2)
    assert pick_replica([full_warm, cold_free]) == "b"
    # With every slot taken, the prefetch room is used: warm first, as for slots.
    full_cold = RouteCandidate("b", free=2, capacity=20, warm=False, prefetch=2)
    assert pick_replica([full_cold, full_warm]) == "a"
    assert pick_replica([RouteCandidate("a", free=0, capacity=20, warm=True, prefetch=2)]) is None
