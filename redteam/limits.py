"""Upper bounds on sizes in scenario files, and the rule for names used as path parts.

A scenario that asks for a trillion users or a billion epochs is refused when it is validated,
with the key and the limit named (``dataset.users: 1000000000000 is over the limit of 10000000
(redteam.limits.MAX_USERS)``), instead of failing later with a MemoryError or running for ever.
The limits are far above anything this testbed is meant to run; raise one here if you need to.

Fields use the annotated types below, e.g. ``users: Users = Field(2000, ge=1)``: the lower bound
stays on the field, the upper bound comes from this module.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, ValidationError
from pydantic_core import InitErrorDetails

MAX_USERS = 10_000_000  # synthetic users; eval.max_users
MAX_ITEMS = 10_000_000  # synthetic catalog size; api.topk
MAX_BUDGET = 1_000_000_000  # api.budget: black-box queries
MAX_EPOCHS = 10_000  # victim, fine-tuning and attack training epochs
MAX_STEPS = 100_000  # optimisation steps of a text attack (sts.gcg)
MAX_BOOTSTRAP = 1_000_000  # bootstrap resamples per confidence interval
MAX_TRIALS = 1_000_000  # STS evaluation trials per target
MAX_HIDDEN = 16_384  # victim embedding / hidden width
MAX_SEQ_LEN = 100_000  # most recent items a victim keeps from a history


def at_most(limit: int, name: str) -> AfterValidator:
    """A pydantic validator refusing a number over ``limit`` (``name``: the constant above)."""

    def check(value: Any) -> Any:
        if value is not None and value > limit:
            raise ValueError(f"{value} is over the limit of {limit} (redteam.limits.{name})")
        return value

    return AfterValidator(check)


Users = Annotated[int, at_most(MAX_USERS, "MAX_USERS")]
Items = Annotated[int, at_most(MAX_ITEMS, "MAX_ITEMS")]
Budget = Annotated[int, at_most(MAX_BUDGET, "MAX_BUDGET")]
Epochs = Annotated[int, at_most(MAX_EPOCHS, "MAX_EPOCHS")]
Steps = Annotated[int, at_most(MAX_STEPS, "MAX_STEPS")]
Resamples = Annotated[int, at_most(MAX_BOOTSTRAP, "MAX_BOOTSTRAP")]
Trials = Annotated[int, at_most(MAX_TRIALS, "MAX_TRIALS")]
Hidden = Annotated[int, at_most(MAX_HIDDEN, "MAX_HIDDEN")]
SeqLen = Annotated[int, at_most(MAX_SEQ_LEN, "MAX_SEQ_LEN")]


# --------------------------------------------------------------------------------------------
# names that become parts of file paths (run directories, cache entries, report files)

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+@-]*$")
SAFE_NAME_RULE = "letters, digits and . _ - + @, not starting with '.' and without '..'"


def is_safe_name(value: object) -> bool:
    """A text that is one harmless path part: no separator, no leading dot, no ``..``."""
    return isinstance(value, str) and bool(SAFE_NAME.match(value)) and ".." not in value


def unsafe_name_message(value: object) -> str:
    """The one-line complaint about a name that is not :func:`is_safe_name`."""
    return f"{value!r} is not a safe name ({SAFE_NAME_RULE})"


def check_safe_name(value: str) -> str:
    """Pydantic after-validator form of :func:`is_safe_name` (ValueError with the rule)."""
    if not is_safe_name(value):
        raise ValueError(unsafe_name_message(value))
    return value


SafeName = Annotated[str, AfterValidator(check_safe_name)]



def unsafe_name_error(model: str, key: str, value: object) -> ValidationError:
    """A validation error at ``key`` for an unsafe name, for a model validator to raise: pydantic
    reports it at ``<where the model sits>.key`` (``attacks.0.label``) like a field's own error."""
    details = InitErrorDetails(type="value_error", loc=(key,), input=value,
                               ctx={"error": ValueError(unsafe_name_message(value))})
    return ValidationError.from_exception_data(model, [details])
