from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from reuse_runtime.controller.router import RouteCandidate, RouteIndex, pick_replica


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


# ------------------------------------------------------------------ RouteIndex


@dataclass
class _Replica:
    room: int
    capacity: int
    prefetch: int
    warm: set[str] = field(default_factory=set)
    eligible: bool = True


def _candidates(replicas: dict[str, _Replica], code_key: str) -> list[RouteCandidate]:
    return [
        RouteCandidate(rid, r.room, r.capacity, code_key in r.warm, r.prefetch)
        for rid, r in replicas.items()
        if r.eligible and r.room > 0
    ]


def _index(replicas: dict[str, _Replica], index: RouteIndex, rid: str) -> None:
    r = replicas[rid]
    order = list(replicas).index(rid)
    index.update(
        rid, order=order, room=r.room, capacity=r.capacity, prefetch=r.prefetch, warm=r.warm
    )


def test_the_index_picks_what_pick_replica_picks_as_rooms_change() -> None:
    index = RouteIndex()
    replicas = {f"r{i}": _Replica(room=4, capacity=4, prefetch=2) for i in range(5)}
    for rid in replicas:
        _index(replicas, index, rid)
    eligible = lambda rid: replicas[rid].eligible  # noqa: E731
    # All alike: the first, as pick_replica keeps the order given on ties.
    assert index.pick("m@1", eligible) == pick_replica(_candidates(replicas, "m@1")) == "r0"
    # r3 is warm for m@1: it comes first while it has a slot.
    replicas["r3"].warm.add("m@1")
    replicas["r3"].room = 3
    _index(replicas, index, "r3")
    assert index.pick("m@1", eligible) == "r3"
    # Warm for another code: least loaded first.
    assert index.pick("m@2", eligible) == pick_replica(_candidates(replicas, "m@2")) == "r0"
    # r3 beyond its slots (room = its prefetch): a cold replica with a free slot wins.
    replicas["r3"].room = 2
    _index(replicas, index, "r3")
    assert index.pick("m@1", eligible) == pick_replica(_candidates(replicas, "m@1")) == "r0"


def test_a_replica_the_index_may_not_route_to_leaves_it_until_updated() -> None:
    index = RouteIndex()
    replicas = {"a": _Replica(room=4, capacity=4, prefetch=0)}
    replicas["b"] = _Replica(room=2, capacity=4, prefetch=0)
    for rid in replicas:
        _index(replicas, index, rid)
    replicas["a"].eligible = False  # gone silent, say
    eligible = lambda rid: replicas[rid].eligible  # noqa: E731
    assert index.pick("", eligible) == "b"
    assert "a" not in index
    replicas["a"].eligible = True
    assert index.pick("", eligible) == "b", "a comes back with its next update, not before"
    _index(replicas, index, "a")
    assert index.pick("", eligible) == "a"


def test_without_queueing_only_a_free_slot_is_picked() -> None:
    index = RouteIndex()
    replicas = {"busy": _Replica(room=2, capacity=4, prefetch=2, warm={"m@1"})}
    replicas["free"] = _Replica(room=3, capacity=4, prefetch=2)
    for rid in replicas:
        _index(replicas, index, rid)
    eligible = lambda rid: replicas[rid].eligible  # noqa: E731
    # A free slot is picked, warm or not, whether queueing is allowed or not.
    assert index.pick("m@1", eligible, queue=False) == "free"
    # With every slot taken, the queue's room is used only when queueing is allowed.
    replicas["free"].room = 2
    _index(replicas, index, "free")
    assert index.pick("m@1", eligible) == "busy"
    assert index.pick("m@1", eligible, queue=False) is None
    assert index.pick("", eligible, queue=False) is None


def test_a_replica_without_room_is_never_picked() -> None:
    index = RouteIndex()
    index.update("full", order=0, room=0, capacity=2, prefetch=0, warm={"m"})
    assert index.pick("m", lambda rid: True) is None
    assert len(index) == 0


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 7),  # which replica
            st.integers(-1, 6),  # its room (<= 0: none)
            st.sampled_from([1, 2, 4]),  # its capacity
            st.sampled_from(["", "m@1", "m@2", "n@1"]),  # a code key it loads
            st.booleans(),  # eligible
            st.sampled_from(["", "m@1", "m@2", "n@1"]),  # the code key of the next pick
        ),
        max_size=60,
    )
)
def test_the_index_agrees_with_pick_replica_over_any_sequence_of_changes(
    steps: list[tuple[int, int, int, str, bool, str]],
) -> None:
    index = RouteIndex(warm_heaps=2)  # small, so heaps are evicted and rebuilt too
    replicas: dict[str, _Replica] = {f"r{i}": _Replica(0, 1, 0) for i in range(8)}
    for which, room, capacity, code, eligible, wanted in steps:
        rid = f"r{which}"
        r = replicas[rid]
        r.room, r.capacity, r.prefetch = room, capacity, capacity // 2
        r.warm.add(code)
        r.eligible = eligible
        # As the dispatcher does: an ineligible replica is discarded, the others updated.
        if eligible:
            _index(replicas, index, rid)
        else:
            index.discard(rid)
        # The reference: every eligible replica the index was told about.
        indexed = {k: v for k, v in replicas.items() if v.eligible and k in index}
        expected = pick_replica(_candidates(indexed, wanted))
        assert index.pick(wanted, lambda k: replicas[k].eligible) == expected
