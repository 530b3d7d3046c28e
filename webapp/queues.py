"""The queues the web and the workers share; the web enqueues jobs by their dotted names (no torch here).

Job functions live in ``jobs/`` (``jobs.generate.run``, ``jobs.mail.*``, ``jobs.chores.*``); their
dotted names are stored in Redis with each queued job, so they never change.

Each model has its own generation queue (``generate:<model>``), so a worker started with
``--models a,b`` listens only to the queues of the models it can run and never takes another's job.
"""
from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rq import Queue, Worker
from rq.job import Job
from rq.serializers import JSONSerializer

from . import metrics, services, telemetry

# Jobs are stored as JSON, never pickles: whoever can write to Redis cannot make a worker run code by unpickling.
# Every Queue, Job and Worker in the web, the workers and the scheduler uses it.
SERIALIZER = JSONSerializer

GENERATE_QUEUE = "generate"
CHORE_QUEUE = "default"
QUEUE_NAMES = (GENERATE_QUEUE, CHORE_QUEUE)


def model_queue_name(model: str) -> str:
    """The queue of one model's generations."""
    return f"{GENERATE_QUEUE}:{model}"


def is_generation_queue(name: str) -> bool:
    """True for the plain ``generate`` queue and every model's ``generate:<model>`` queue."""
    return name == GENERATE_QUEUE or name.startswith(GENERATE_QUEUE + ":")


class TracedQueue(Queue):
    """A queue whose jobs carry the enqueuing request's trace context in ``meta`` (when tracing is on)."""

    def create_job(self, *args, **kwargs) -> Job:
        job = super().create_job(*args, **kwargs)
        if context := telemetry.carrier(job.id, generation=is_generation_queue(self.name)):
            job.meta["otel"] = context
        return job


def generation_queue(model: str | None = None) -> Queue:
    """The queue of a model's generations (the plain ``generate`` queue when model is None)."""
    name = model_queue_name(model) if model else GENERATE_QUEUE
    return TracedQueue(name, connection=services.redis(), serializer=SERIALIZER)


def generation_queues() -> list[Queue]:
    """Every generation queue: the plain one (jobs queued before per-model queues) and one per catalog model."""
    return [generation_queue()] + [generation_queue(name) for name in services.catalog()]


def chore_queue() -> Queue:
    """The queue for email, cleanup and other chores."""
    return TracedQueue(CHORE_QUEUE, connection=services.redis(), serializer=SERIALIZER)


def fetch_job(job_id: str) -> Job:
    """The RQ job with this id (raises ``rq.exceptions.NoSuchJobError`` when it is gone)."""
    return Job.fetch(job_id, connection=services.redis(), serializer=SERIALIZER)


# Fair order between people: start-time fair queuing on RQ's own queue list. Each queued generation gets a
# virtual start tag, the later of "now" (the first tag still queued) and the end of that
# person's previous work (start + images / weight); the list stays sorted by tag, ties first come first
# served. So someone who queued twenty images gets one turn in each round, not all twenty before anyone else.
FAIR_STARTS = "easel:fair:starts"  # sorted set: queued job id -> its start tag
FAIR_FINISHES = "easel:fair:finishes"  # hash: user id -> where that person's queued work ends
FAIR_CLOCK = "easel:fair:clock"  # the latest start tag handed out: "now" when the queue is empty
FAIR_WEIGHTS = "easel:fair:weights"  # hash: user id -> weight (2 = twice the share); a copy of users.queue_weight

# KEYS: queue list, starts, finishes, clock, weights; ARGV: job id, user id, images. The job's new index, -1 if taken.
PLACE_SCRIPT = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return -1 end
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local now = tonumber(redis.call('GET', KEYS[4]) or '0')
for _, id in ipairs(ids) do
    local first = redis.call('ZSCORE', KEYS[2], id)
    if first then
        now = tonumber(first)
        redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. first)
        break
    end
end
local weight = tonumber(redis.call('HGET', KEYS[5], ARGV[2]) or '1')
if weight <= 0 then weight = 1 end
local start = math.max(now, tonumber(redis.call('HGET', KEYS[3], ARGV[2]) or '0'))
redis.call('HSET', KEYS[3], ARGV[2], start + tonumber(ARGV[3]) / weight)
redis.call('ZADD', KEYS[2], start, ARGV[1])
if start > tonumber(redis.call('GET', KEYS[4]) or '0') then redis.call('SET', KEYS[4], start) end
for index, id in ipairs(ids) do
    local other = redis.call('ZSCORE', KEYS[2], id)
    if other and tonumber(other) > start then
        redis.call('LINSERT', KEYS[1], 'BEFORE', id, ARGV[1])
        return index - 1
    end
end
redis.call('RPUSH', KEYS[1], ARGV[1])
return #ids
"""


def place_fairly(queue: Queue, job_id: str, user_id: int, images: int) -> int | None:
    """Move a just-enqueued job to its fair place in the queue; its index, or None when a worker already took it."""
    script = queue.connection.register_script(PLACE_SCRIPT)
    index = script(keys=[queue.key, FAIR_STARTS, FAIR_FINISHES, FAIR_CLOCK, FAIR_WEIGHTS],
                   args=[job_id, user_id, images])
    return None if index < 0 else int(index)


RETRYING = "easel:retrying:{}"  # set while an admin puts a failed generation back: the reconciliation leaves it be
RETRYING_SECONDS = 60  # the mark outlives a retry that died half-way only this long


@contextmanager
def retrying(job_id: str) -> Iterator[None]:
    """Mark a failed generation as being put back on its queue, for the span of the retry."""
    key = RETRYING.format(job_id)
    services.redis().set(key, 1, ex=RETRYING_SECONDS)
    try:
        yield
    finally:
        services.redis().delete(key)


def being_retried(job_id: str) -> bool:
    """Whether an admin is putting this generation back on its queue right now."""
    return bool(services.redis().exists(RETRYING.format(job_id)))


WEIGHTS_PER_COMMAND = 10_000  # fields per HSET/HDEL in set_weights' one pipeline


def set_weights(user_ids: list[int], weight: float) -> None:
    """Write one weight for these people into the Redis copy, in one pipelined round trip (1 is no entry).

    The copy only: ``webapp.queue_weights`` keeps the users table, the truth, and calls this after its commit.
    """
    with services.redis().pipeline(transaction=False) as pipe:
        for start in range(0, len(user_ids), WEIGHTS_PER_COMMAND):
            chunk = user_ids[start:start + WEIGHTS_PER_COMMAND]
            if weight == 1:
                pipe.hdel(FAIR_WEIGHTS, *chunk)
            else:
                pipe.hset(FAIR_WEIGHTS, mapping=dict.fromkeys(chunk, weight))
        pipe.execute()


BATCH_LOG = "easel:stats:batches"  # "unix time:generations:seconds" per pipeline call, newest first
BATCH_LOG_LENGTH = 5000
ETA_CALLS = 50  # the last calls a queued generation's ETA is measured from


def record_batch(redis, generations: int, seconds: float) -> None:
    """Note one pipeline call of a generation worker (the admin charts, the ETA of queued generations)."""
    metrics.batch_made(generations)
    with redis.pipeline(transaction=False) as pipe:
        pipe.lpush(BATCH_LOG, f"{time.time():.0f}:{generations}:{seconds:.3f}")
        pipe.ltrim(BATCH_LOG, 0, BATCH_LOG_LENGTH - 1)
        pipe.execute()


def queued_eta(redis, position: int, model: str | None = None) -> float | None:
    """Seconds until a generation at queue ``position`` is done, from the workers' measured calls; None if unknown.

    An estimate: ``position`` generations at the measured seconds per generation (batching included), shared
    by the generation workers online.
    """
    generations = seconds = 0.0
    for raw in redis.lrange(BATCH_LOG, 0, ETA_CALLS - 1):
        parts = raw.decode().split(":")
        generations, seconds = generations + int(parts[1]), seconds + float(parts[2])
    if not generations:
        return None
    name = model_queue_name(model) if model else GENERATE_QUEUE  # the workers that serve this model
    workers = Worker.count(connection=redis, queue=Queue(name, connection=redis, serializer=SERIALIZER))
    return round(position * seconds / generations / max(1, workers), 1)
