"""The fair order of the generation queue (``webapp.queues.place_fairly``) on a real Redis."""
from __future__ import annotations

from tests.support import sign_in, submit_ok
from webapp import queues, services
from webapp.extensions import db
from webapp.queue_weights import set_queue_weight
from webapp.tables import User


def _order(app, ids_by_name: dict[str, str]) -> list[str]:
    names = {gid: name for name, gid in ids_by_name.items()}
    with app.app_context():
        return [names[gid] for gid in queues.generation_queue("easel-tiny").get_job_ids()]


def test_people_take_turns_and_each_keeps_first_in_first_out(app, signed_in, make_user):
    app.config["MAX_ACTIVE_PER_USER"] = 10
    make_user("bob@example.com")
    make_user("cy@example.com")
    bob, cy = sign_in(app, "bob@example.com"), sign_in(app, "cy@example.com")
    ids = {f"a{n}": submit_ok(signed_in, seed=n) for n in range(1, 5)}
    ids["b1"] = submit_ok(bob)
    ids["c1"] = submit_ok(cy)
    ids["b2"] = submit_ok(bob)
    assert _order(app, ids) == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]
    positions = {name: signed_in.get(f"/api/generations/{gid}").get_json()["queue_position"]
                 for name, gid in ids.items() if name.startswith("a")}
    assert positions == {"a1": 1, "a2": 4, "a3": 6, "a4": 7}  # the position is the real order


def _weights(app, user_id: int) -> tuple[float, bytes | None]:
    """(the users table's weight, the Redis copy) of one person."""
    with app.app_context():
        return db.session.get(User, user_id).queue_weight, services.redis().hget(queues.FAIR_WEIGHTS, user_id)


def test_a_weight_gives_a_person_a_larger_share(app, signed_in, make_user):
    app.config["MAX_ACTIVE_PER_USER"] = 10
    teacher_id = make_user("teacher@example.com")
    teacher = sign_in(app, "teacher@example.com")
    with app.app_context():
        set_queue_weight(db.session.get(User, teacher_id), 2)
    ids = {f"a{n}": submit_ok(signed_in, seed=n) for n in range(1, 4)}
    ids |= {f"t{n}": submit_ok(teacher, seed=n) for n in range(1, 5)}
    assert _order(app, ids) == ["a1", "t1", "t2", "a2", "t3", "t4", "a3"]


def test_queue_weight_command_sets_the_weight(app, runner, make_user):
    user_id = make_user("teacher@example.com")
    result = runner.invoke(args=["queue-weight", "Teacher@example.com", "3"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        assert float(services.redis().hget(queues.FAIR_WEIGHTS, user_id)) == 3.0
    assert _weights(app, user_id) == (3.0, b"3.0")  # the row is the truth, Redis its copy
    assert runner.invoke(args=["queue-weight", "nobody@example.com", "2"]).exit_code != 0
    for bad in ("0", "11", "nan", "two"):  # the admin page's range: nothing changes
        assert runner.invoke(args=["queue-weight", "teacher@example.com", bad]).exit_code != 0
    assert _weights(app, user_id) == (3.0, b"3.0")
    assert runner.invoke(args=["queue-weight", "teacher@example.com", "1"]).exit_code == 0
    assert _weights(app, user_id) == (1.0, None)  # the default is no entry in Redis


def test_queued_eta_comes_from_measured_calls(app, signed_in):
    app.config["MAX_ACTIVE_PER_USER"] = 5
    ids = [submit_ok(signed_in, seed=n) for n in range(3)]
    assert signed_in.get(f"/api/generations/{ids[2]}").get_json()["eta_seconds"] is None  # nothing measured yet
    with app.app_context():
        for generations, seconds in ((4, 2.0), (2, 1.0)):
            queues.record_batch(services.redis(), generations, seconds)
    state = signed_in.get(f"/api/generations/{ids[2]}").get_json()
    assert (state["queue_position"], state["eta_seconds"]) == (3, 1.5)  # 3 generations at 0.5 s each
