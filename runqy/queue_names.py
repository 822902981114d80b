"""Queue names: a parent (``inference``) and its sub-queues (``inference.high``).

Redis keys and workers always use the full sub-queue name; clients may name a
parent, which stands for its ``default`` sub-queue when one queue is meant and
for all of its sub-queues when several are.
"""

DEFAULT_SUB_QUEUE = "default"


def is_sub_queue(name: str) -> bool:
    """True for a full ``parent.sub`` name."""
    return "." in name


def parent_of(name: str) -> str:
    """The parent of ``parent.sub`` (a parent name is its own parent)."""
    return name.partition(".")[0]


def sub_queue_name(parent: str, sub: str) -> str:
    return "%s.%s" % (parent, sub)


def full_queue_name(name: str) -> str:
    """``parent`` means ``parent.default``; Redis keys always use the full name."""
    return name if is_sub_queue(name) else sub_queue_name(name, DEFAULT_SUB_QUEUE)
