"""The runner's shared state (browserfarm.runner.state) as its threads use it at once:
start threads take warm browsers while warm threads add them and the loop counts
slots; no warm browser is lost or handed to two workers, and every count comes back."""
from __future__ import annotations

import threading

from browserfarm.runner.state import Active, RunnerState, Warm

THREADS = 8
ROUNDS = 500


class Firefox:  # a backend is a class; the state only compares them
    pass


def warm_browser(n: int) -> Warm:
    return Warm(Firefox, handle=None, profile_dir=None, resolution="1024x768", session=n)


def in_threads(*targets) -> None:
    threads = [threading.Thread(target=t) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()


def test_each_warm_browser_goes_to_one_worker_and_none_is_lost():
    state = RunnerState(slots=4)
    made, taken = [], []
    lock = threading.Lock()

    def warmer():  # as WarmPool: one on its way at a time, up to a pool of 2
        for _ in range(ROUNDS):
            if state.begin_warming(Firefox, 2):
                with lock:
                    warm = warm_browser(len(made))
                    made.append(warm)
                assert state.end_warming(warm)

    def starter():  # as Launcher: a slot, then a warm browser if there is one
        for n in range(ROUNDS):
            worker_id = threading.get_ident() * 10_000 + n
            state.add_starting(worker_id)
            warm = state.take_warm(Firefox, "1024x768")
            if warm is not None:
                with lock:
                    taken.append(warm)
            state.remove_starting(worker_id)

    in_threads(*[warmer] * 2, *[starter] * THREADS)
    left = state.close_pool()
    assert len({id(w) for w in taken}) == len(taken)  # never one browser twice
    assert sorted(w.session for w in taken + left) == list(range(len(made)))  # all found
    assert not state.busy() and state.free_slots() == 4


def test_a_warm_browser_started_while_the_runner_stops_is_not_kept():
    state = RunnerState(slots=1)
    assert state.begin_warming(Firefox, 1)
    assert state.close_pool() == []  # shutdown takes the pool first
    assert not state.end_warming(warm_browser(0))  # its thread discards it
    assert state.warm() == [] and not state.busy()
    assert not state.begin_warming(Firefox, 1)  # and no other starts


def test_a_worker_is_ended_by_one_thread_however_many_checks_find_it():
    state = RunnerState(slots=2)
    active = Active(worker_id=1, backend=Firefox, handle=None)
    state.add_active(active)
    winners = []
    in_threads(*[lambda: winners.append(state.begin_ending(active))] * THREADS)
    assert winners.count(True) == 1
    state.remove_active(1)
    assert state.active() == {} and state.free_slots() == 2
