"""Names shared by the graph builder, the engine and the runtimes."""

START = "__start__"
END = "__end__"

# Reserved channel names (never valid state keys).
INPUT = "__input__"
INTERRUPT = "__interrupt__"
RESUME = "__resume__"
ERROR = "__error__"
NO_WRITES = "__no_writes__"
TASKS = "__pregel_tasks"
RETURN = "__return__"
PREVIOUS = "__previous__"

# Task path kinds: a "pull" task is triggered by channel versions, a "push"
# task by a Send packet.
PULL = "__pregel_pull"
PUSH = "__pregel_push"

# Tag that hides a task from "updates"/"debug" streams (the START task).
TAG_HIDDEN = "langsmith:hidden"

# The pseudo-task that owns writes not made by a node: a resume Command's
# update/goto, and the graph input.
NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
INPUT_TASK_NAME = "__input__"

NS_SEP = "|"
NS_END = ":"

RESERVED = {START, END, INPUT, INTERRUPT, RESUME, ERROR, NO_WRITES, TASKS, RETURN, PREVIOUS}
