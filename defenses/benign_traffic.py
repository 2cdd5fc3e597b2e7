"""Benign API traffic a serving defender calibrates against: real users replayed as sessions.

Each user's history is asked as it grows (one query per prefix). An "app" key carries the
interleaved sessions of many users (a shop front-end calling the recommender for its visitors),
a "user" key one user's session. Shared by the query-stream detector (thresholds) and the key
quota (the benign traffic its quota refuses).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from redteam.params import Params


class BenignTrafficParams(Params):
    app_keys: int = Field(200, ge=4, description="benign keys with many users each")
    users_per_app_key: int = Field(100, ge=1, description="users whose sessions interleave behind one app key")
    user_keys: int = Field(400, ge=0, description="benign keys with one user each")


def benign_keys(histories: list[np.ndarray], p: BenignTrafficParams, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """Benign streams, app keys first (``p.app_keys`` of them), then user keys: each user's history
    asked as it grows; an app key interleaves its users' sessions in a random order."""
    users = [h for h in histories if len(h)]
    keys = []
    for _ in range(p.app_keys):
        chosen = rng.choice(len(users), size=min(p.users_per_app_key, len(users)), replace=False)
        turns = np.concatenate([np.full(len(users[u]), u) for u in chosen])
        rng.shuffle(turns)
        grown = dict.fromkeys(chosen.tolist(), 0)
        stream = []
        for u in turns.tolist():
            grown[u] += 1
            stream.append(users[u][: grown[u]])
        keys.append(stream)
    for u in rng.choice(len(users), size=min(p.user_keys, len(users)), replace=False):
        keys.append([users[u][: i + 1] for i in range(len(users[u]))])
    return keys
