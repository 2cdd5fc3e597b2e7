"""Scenario files: YAML -> validated, layered configuration.

Layering, lowest first: package defaults < each component's declared parameter defaults <
the scenario file < ``--set a.b=c`` overrides. Every error names the key path and, for an
unknown key, suggests the nearest valid one.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from redteam.data.registry import DatasetConfig
from redteam.errors import ConfigError
from redteam.limits import Budget, Epochs, Items, Resamples, SafeName, Trials, Users, is_safe_name, unsafe_name_error
from redteam.overrides import apply_override, describe_error
from redteam.registry import Kind, did_you_mean, resolve


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ComponentSpec(BaseModel):
    """``{name: alias, **params}``: params are checked against the component's declared Params.

    ``name`` and an optional ``label`` become parts of file paths (cache entries, report rows),
    so both must be safe names (see :mod:`redteam.limits`).
    """

    model_config = ConfigDict(extra="allow")
    name: SafeName

    @model_validator(mode="after")
    def _safe_label(self) -> "ComponentSpec":
        label = self.options.get("label")
        if label is not None and not is_safe_name(str(label) if isinstance(label, int) else label):
            raise unsafe_name_error(type(self).__name__, "label", label)
        return self

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def label(self) -> str:
        return str(self.options.get("label", self.name))


class ApiConfig(Section):
    topk: Items = Field(100, ge=1, description="ids returned per query")
    budget: Budget | None = Field(None, ge=0, description="total queries allowed (null: unlimited)")
    expose_scores: bool = Field(False, description="return scores with ids")
    exclude_history: bool = Field(False, description="drop the query's own items from answers")
    batch_size: int = Field(512, ge=1, description="histories scored per forward pass")
    transport: Literal["inprocess", "http"] = Field(
        "inprocess", description="inprocess: attacks query the victim in this process; http: each attack queries "
        "it through `redteam serve` in a child process on a loopback port (resumable from its transcript)")
    http_batch_size: int = Field(256, ge=1, le=100_000, description="histories per HTTP request (transport: http)")


class AttackerConfig(Section):
    """What the threat model grants every attacker of this scenario."""

    few_shot_ratio: float = Field(0.1, ge=0, lt=1, description="share of real users whose training sequences the attacker holds")
    knows_architecture: bool = Field(True, description="the attacker knows the victim's architecture")
    item_text: bool = Field(False, description="the attacker may read the public item text")
    item_popularity: bool = Field(True, description="the attacker knows item popularity (training interaction counts, as a public bestseller list)")
    seeds: list[int] | None = Field(None, description="repeat each attack with these attacker seeds against the same victim (default: the run seed)")


class PoisoningConfig(Section):
    """Shared by every poisoning attack of a scenario, so that their rows are comparable.

    Targets are drawn once per run from the root seed; each poisoning attack may override the
    fake budget, profile shape and retraining mode with its own parameters of the same names.
    """

    targets: int = Field(5, ge=1, description="number of target items drawn (ignored with target_ids)")
    target_selection: Literal["unpopular", "buckets"] = Field(
        "unpopular", description="unpopular: drawn from items below the median training popularity; "
        "buckets: one item from each of `targets` equal-size popularity buckets")
    target_ids: list[str | int] | None = Field(None, description="explicit targets: the dataset's own (raw) item ids")
    fake_share: float = Field(0.01, gt=0, le=1, description="fake users as a share of the real users (at least one per target)")
    profile_length: Literal["real"] | int = Field("real", description="items per fake profile: 'real' draws from the real users' lengths, or a fixed number >= 2")
    placement: Literal["random", "alternate", "end"] = Field(
        "random", description="target slots in a profile: random non-adjacent positions, evenly spaced ending on the target, or the last positions")
    target_share: float = Field(0.2, gt=0, le=0.5, description="share of each profile's items that are its target (at least one)")
    retrain: Literal["scratch", "finetune"] = Field("scratch", description="retrain the victim from scratch on real + fake profiles, or fine-tune the clean weights (a weaker setting)")
    finetune_epochs: Epochs = Field(10, ge=1, description="maximum epochs of retrain: finetune")
    defend_clean: bool = Field(True, description="also train every defense on the clean training set (its own row: "
                               "clean-accuracy cost, real users flagged); false saves one retrain per defense and seed, "
                               "the defended poisoned rows still report clean accuracy")
    k: list[int] = Field(default_factory=lambda: [50], description="cut-offs of target_hr@K / target_ndcg@K")

    @model_validator(mode="after")
    def _check(self) -> "PoisoningConfig":
        if isinstance(self.profile_length, int) and self.profile_length < 2:
            raise ValueError("profile_length must be 'real' or an integer >= 2")
        if not self.k or any(k < 1 for k in self.k):
            raise ValueError("every cut-off must be >= 1")
        if self.target_ids is not None and len(self.target_ids) == 0:
            raise ValueError("target_ids must name at least one item")
        return self


class CatalogConfig(Section):
    """The product catalog of a text-ranking (STS) scenario."""

    name: str = Field("coffee_machines", description="a built-in catalog (see `redteam list catalogs`) or scientific_<slug> (real Amazon Scientific texts)")
    path: Path | None = Field(None, description="a catalog JSON file of your own (overrides name)")
    data_dir: Path | None = Field(None, description="folder holding amazon-scientific/ (default: $REDTEAM_DATA_DIR)")
    max_products: int | None = Field(None, ge=2, description="keep a seeded random subset of the pool")


class STSConfig(Section):
    """Shared by every text attack of a scenario, so that their rows are paired trial by trial."""

    targets: list[str] | int = Field(1, description="target product names, or how many to draw (seeded) from the catalog")

    @model_validator(mode="after")
    def _check_targets(self) -> "STSConfig":
        if isinstance(self.targets, list):
            if not self.targets:
                raise ValueError("targets: name at least one product (or give a count)")
            if len(set(self.targets)) != len(self.targets):
                raise ValueError("targets: a product is named twice")
        return self
    heldout_share: float = Field(0.5, gt=0, lt=1, description="share of the requests kept out of optimisation for evaluation")
    trials: Trials = Field(50, ge=1, description="evaluation trials per target: a held-out request and a random catalog order each")
    seen_trials: Trials = Field(0, ge=0, description="extra trials on the optimisation requests (in-sample top-1 rate)")
    competitors: int | None = Field(None, ge=1, description="products shown with the target per trial, drawn from the pool (null: the whole catalog)")
    reference_texts: int = Field(400, ge=10, description="real product texts for the text defenses: half calibrate, half measure false positives")


class EvalConfig(Section):
    k: list[int] = Field(default_factory=lambda: [10, 50], description="cut-offs for HR/NDCG/MRR")
    bootstrap: Resamples = Field(1000, ge=0, description="bootstrap resamples for confidence intervals")
    confidence: float = Field(0.95, gt=0, lt=1, description="coverage of the bootstrap intervals")
    exclude_history: bool = Field(False, description="remove each user's history from their ranking")
    max_users: Users | None = Field(None, ge=1, description="evaluate a seeded sample of test users")

    @model_validator(mode="after")
    def _positive_k(self) -> "EvalConfig":
        if not self.k or any(k < 1 for k in self.k):
            raise ValueError("every cut-off must be >= 1")
        return self


class Gate(Section):
    """A pass/fail bound on one metric of the rows that match victim/attack/defense."""

    metric: str = Field(description="a metric name of the rows (ndcg@10, agreement@10, target_hr@50, ...)")
    victim: str | None = Field(None, description="only rows of this victim (label); default: every victim")
    attack: str | None = Field(None, description="only rows of this attack (label; `none` for clean rows); default: every attack")
    defense: str | None = Field(None, description="only rows of this defense (label); default: every defense")
    min: float | None = Field(None, description="the metric must be at least this")
    max: float | None = Field(None, description="the metric must be at most this")
    max_drop_vs: str | None = Field(None, description="defense whose row is the reference")
    max_drop: float | None = Field(None, ge=0, description="largest relative drop allowed vs the reference")
    min_drop_vs: str | None = Field(None, description="defense whose row is the reference for min_drop")
    min_drop: float | None = Field(None, description="smallest relative drop required vs the reference "
                                                      "(a defense must cut an attack's success by this much)")

    @model_validator(mode="after")
    def _has_bound(self) -> "Gate":
        if all(bound is None for bound in (self.min, self.max, self.max_drop, self.min_drop)):
            raise ValueError("a gate needs min, max, max_drop or min_drop")
        if (self.max_drop is None) != (self.max_drop_vs is None):
            raise ValueError("max_drop and max_drop_vs go together")
        if (self.min_drop is None) != (self.min_drop_vs is None):
            raise ValueError("min_drop and min_drop_vs go together")
        return self


class OutputConfig(Section):
    dir: Path = Field(Path("runs"), description="parent of the run directories (<dir>/<name>-<hash>)")
    formats: list[Literal["json", "html", "junit", "md"]] = Field(
        default_factory=lambda: ["json"],
        description="files written into the run directory: json (results.json, always written), "
                    "html (report.html), junit (junit.xml), md (report.md)")


class RuntimeConfig(Section):
    threads: int | None = Field(None, ge=1, description="torch threads (default: all cores, at most 4)")
    cache: bool = Field(True, description="reuse trained victims across runs")
    cache_dir: Path | None = Field(None, description="default: $REDTEAM_CACHE_DIR or ~/.cache/redteam")
    executor: Literal["serial", "ray"] = Field("serial", description="run units of work in this process, or as Ray tasks")
    address: str | None = Field(None, description="executor ray: an existing cluster (auto, or HOST:PORT of its head); "
                                "default: start a local Ray instance")
    workers: int | None = Field(None, ge=1, description="executor ray without address: CPUs of the local Ray instance")
    unit_cpus: int = Field(1, ge=1, description="executor ray: CPUs (and torch threads) per unit")


class Scenario(Section):
    name: SafeName = Field(description="names the run directory: letters, digits and . _ - + @, not starting with '.' and without '..'")
    description: str = Field("", description="free text shown in reports")
    seed: int = Field(0, description="root seed; every component derives its own generator from it")
    seeds: list[int] | None = Field(None, description="repeat the whole run, victims retrained, once per seed (default: [seed])")
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    victims: list[ComponentSpec] = Field(min_length=1, description="the recommenders under attack, each trained (or loaded from the cache) and served behind the API")
    api: ApiConfig = Field(default_factory=ApiConfig)
    attacker: AttackerConfig = Field(default_factory=AttackerConfig)
    attacks: list[ComponentSpec] = Field(default_factory=list, description="attacks run against every victim and defense")
    poisoning: PoisoningConfig = Field(default_factory=PoisoningConfig)
    catalog: CatalogConfig = Field(default_factory=CatalogConfig)
    sts: STSConfig = Field(default_factory=STSConfig)
    defenses: list[ComponentSpec] = Field(default_factory=lambda: [ComponentSpec(name="none")],
                                          description="defenses tried against every attack; `none` is the undefended baseline")
    eval: EvalConfig = Field(default_factory=EvalConfig)
    gates: list[Gate] = Field(default_factory=list, description="pass/fail bounds on result cells; a failed gate exits 1")
    output: OutputConfig = Field(default_factory=OutputConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @property
    def run_seeds(self) -> list[int]:
        return self.seeds or [self.seed]

    def attack_seeds_for(self, run_seed: int) -> list[int]:
        """The attacker seeds repeated against the victim of one run seed (default: that seed)."""
        return self.attacker.seeds or [run_seed]

    @property
    def attack_seeds(self) -> list[int]:
        """Every attacker seed over all run seeds."""
        return self.attacker.seeds or self.run_seeds

    @property
    def ranks_text(self) -> bool:
        """Every victim is a text ranker (``family = "ranker"``): an STS scenario."""
        return all(getattr(resolve("victims", v.name), "family", "") == "ranker" for v in self.victims)

    def fingerprint(self) -> str:
        """Hash of everything that changes results: not output or runtime settings, except the
        resolved torch thread count (threads change floating-point sums, hence numbers)."""
        from redteam.environment import default_threads

        skip = {"output", "runtime", "description"} | (set() if self.ranks_text else {"catalog", "sts"})
        data = self.model_dump(mode="json", exclude=skip)
        data["runtime"] = {"threads": self.runtime.threads or default_threads()}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


def load_scenario(path: Path, overrides: list[str] = ()) -> Scenario:
    """Read, override, normalise and validate a scenario file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"scenario file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a scenario must be a mapping of keys, got {type(raw).__name__}")
    return build_scenario(raw, overrides, source=str(path))


def build_scenario(raw: dict[str, Any], overrides: list[str] = (), *, source: str = "scenario") -> Scenario:
    data = copy.deepcopy(raw)
    for item in overrides:
        apply_override(data, item)
    if "victim" in data:
        if "victims" in data:
            raise ConfigError(f"{source}: give either 'victim' or 'victims', not both")
        data["victims"] = [data.pop("victim")]
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_error(exc, Scenario)}") from None
    check_components(scenario)
    return scenario


SECTION_KIND: dict[str, Kind] = {"victims": "victims", "attacks": "attacks", "defenses": "defenses"}


def check_components(scenario: Scenario) -> None:
    """Resolve every named component and validate its parameters against its Params.

    A component may also check its parameters against the rest of the scenario (a poisoning
    attack that uses another attack's surrogate) with a ``check_scenario`` class method. Two
    attacks may not share a label: their results would land in one row. An attack's ``vs`` names
    the attack row it is paired with (an ablation against its full method).
    """
    for section, kind in SECTION_KIND.items():
        for i, spec in enumerate(getattr(scenario, section)):
            params = component_params(kind, spec, where=f"{section}[{i}]")
            check = getattr(resolve(kind, spec.name), "check_scenario", None)
            if check is not None:
                check(params, scenario, where=f"{section}[{i}]")
    check_families(scenario)
    for i, spec in enumerate(scenario.defenses):
        check_defense_attacker_seeds(spec, scenario.attack_seeds, where=f"defenses[{i}]")
    if not scenario.poisoning.defend_clean:
        for i, gate in enumerate(scenario.gates):
            if gate.attack == "none" and gate.defense not in (None, "none"):
                raise ConfigError(f"gates[{i}].attack: poisoning.defend_clean is false, so defense '{gate.defense}' "
                                  "has no row on the clean training set")
    seen: dict[str, int] = {}
    for i, spec in enumerate(scenario.attacks):
        if spec.label() in seen:
            raise ConfigError(f"attacks[{i}].label: '{spec.label()}' is already the label of attacks[{seen[spec.label()]}]; "
                              "give each attack its own label")
        seen[spec.label()] = i
    for i, spec in enumerate(scenario.attacks):
        vs = spec.options.get("vs")
        if vs is not None and (vs == spec.label() or vs not in seen):
            others = [label for label in seen if label != spec.label()]
            raise ConfigError(f"attacks[{i}].vs: '{vs}' is not another attack's label{did_you_mean(str(vs), others)}; "
                              f"known: {', '.join(others) or 'none'}")


def check_families(scenario: Scenario) -> None:
    """Every attack has a stage for this scenario's victims, and every defense a stage that applies
    its kind: text rankers (``ranker.*``) take text attacks and ranker defenses, recommenders the
    rest; a serving defense needs an extraction-like stage, a training-time one a poisoning-like one."""
    from redteam.registry import resolve_stage

    text = [getattr(resolve("victims", v.name), "family", "recommender") == "ranker" for v in scenario.victims]
    if any(text) and not all(text):
        raise ConfigError("victims: text rankers (ranker.*) and sequential recommenders cannot share a scenario")
    ranking = scenario.ranks_text
    victims, kind_of = ("ranker", "text rankers") if ranking else ("recommender", "sequential recommenders")
    labels = [v.label() for v in scenario.victims]
    remote = [v.label() for v in scenario.victims if getattr(resolve("victims", v.name), "remote", False)]
    stages = {}
    for i, spec in enumerate(scenario.attacks):
        source = spec.options.get("optimise_on")
        if ranking and source is not None and source not in labels:
            raise ConfigError(f"attacks[{i}].optimise_on: no ranker labelled '{source}'{did_you_mean(str(source), labels)}; "
                              f"known: {', '.join(labels)}")
        stage = resolve_stage(resolve("attacks", spec.name).family, where=f"attacks[{i}].name")
        if getattr(stage, "victim_family", "recommender") != victims:
            raise ConfigError(f"attacks[{i}].name: '{spec.name}' does not attack {kind_of} (this scenario's victims)")
        stages[stage.family] = stage
        if getattr(stage, "in_process_only", False) and scenario.api.transport != "inprocess":
            raise ConfigError(f"api.transport: '{spec.name}' queries a copy of the victim that its edits reach in this "
                              f"process (a served model has no edit endpoint); use api.transport: inprocess")
        if remote and stage.needs_model:
            raise ConfigError(f"attacks[{i}].name: '{spec.name}' retrains the victim, which a remote victim "
                              f"({', '.join(remote)}) cannot be; remote victims take extraction attacks")
    for i, spec in enumerate(scenario.defenses):
        cls = resolve("defenses", spec.name)
        if spec.name == "none":
            continue
        applied = any(cls.kind in stage.defense_kinds for stage in stages.values())
        if getattr(cls, "victim_family", "recommender") != victims and not applied:
            raise ConfigError(f"defenses[{i}].name: '{spec.name}' does not defend {kind_of} (this scenario's victims)")
        if not applied:
            here = "; ".join(f"{f} applies {', '.join(sorted(s.defense_kinds))}" for f, s in stages.items()) or "it has no attack"
            raise ConfigError(f"defenses[{i}].name: '{spec.name}' is a {cls.kind} defense and no stage of this scenario "
                              f"applies one ({here})")
        if getattr(cls, "in_process_only", False) and (remote or scenario.api.transport != "inprocess"):
            raise ConfigError(f"defenses[{i}].name: '{spec.name}' reads the attacker's query stream in this process; "
                              "use api.transport: inprocess and a trained victim")
        if cls.kind == "watermark" and remote:
            raise ConfigError(f"defenses[{i}].name: '{spec.name}' is trained into the victim, which a remote victim "
                              f"({', '.join(remote)}) cannot be")


def check_defense_attacker_seeds(spec: ComponentSpec, attack_seeds: list[int], *, where: str) -> None:
    """``attacker_seeds`` of a defense: a subset of the run's attacker seeds (see :func:`defends`)."""
    chosen = spec.options.get("attacker_seeds")
    if chosen is None:
        return
    if spec.name == "none":
        raise ConfigError(f"{where}.attacker_seeds: the undefended rows always cover every attacker seed")
    if not isinstance(chosen, list) or not chosen or not all(isinstance(s, int) and not isinstance(s, bool) for s in chosen):
        raise ConfigError(f"{where}.attacker_seeds: expected a non-empty list of integers, got {chosen!r}")
    unknown = sorted(set(chosen) - set(attack_seeds))
    if unknown:
        raise ConfigError(f"{where}.attacker_seeds: {unknown} not among the scenario's attacker seeds {attack_seeds}")


def defends(spec: ComponentSpec, attack_seed: int) -> bool:
    """Whether a defense is trained on the poisoned set of this attacker seed: every seed unless
    its ``attacker_seeds`` lists fewer (an expensive defense on fewer repetitions)."""
    chosen = spec.options.get("attacker_seeds")
    return chosen is None or attack_seed in chosen


RUNNER_KEYS: dict[str, set[str]] = {"defenses": {"label", "attacker_seeds"}, "attacks": {"label", "vs"}}


def component_params(kind: Kind, spec: ComponentSpec, *, where: str) -> Any:
    cls = resolve(kind, spec.name, where=f"{where}.name")
    options = {k: v for k, v in spec.options.items() if k not in RUNNER_KEYS.get(kind, {"label"})}
    try:
        return cls.Params(**options)
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe_error(exc, cls.Params)}") from None
