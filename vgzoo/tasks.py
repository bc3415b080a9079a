"""The task registry: one record per task, looked up by data, augment, train, testing and bench.

A task record says what a batch holds, which dataset class reads a folder for it, which augmentation pipeline
and training recipe it gets, what a model of that task must be (the :mod:`vgzoo.protocols` classes
``check_model`` tests with ``isinstance``) and what its ``forward`` returns. The references are ``"module:attr"``
strings imported on first use, so importing this module (and ``vgzoo list``) costs no torch import.

A plugin adds a task the way it adds a model, through an entry point of group ``vgzoo.tasks`` whose target is a
:class:`Task`::

    [project.entry-points."vgzoo.tasks"]
    depth_estimation = "vgzoo_depth.task:depth_estimation"

The plugin's module is imported only when that task is looked up (or every task is listed); one that fails to
import is reported by :func:`plugin_tasks` (and by ``get_task`` for that name) and never breaks the zoo.
A plugin cannot replace a built-in task: the built-in wins and the plugin is reported.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from ._plugins import EntryPointGroup
from .errors import PluginError, VgzooError

ENTRY_POINT_GROUP = "vgzoo.tasks"
OUTPUTS = ("logits", "sample", "image")
DEMO_PAGES = ("translation", "generation", "classification", "restoration")
#: How a DATA folder holds a split for ``vgzoo eval`` (:func:`vgzoo.metrics.data_folders`): ``"domains"``
#: (``{split}A/`` and ``{split}B/``), ``"pairs"`` (``{split}/`` of A|B images) or ``"classes"`` (one sub-folder per
#: class, under ``{split}/`` when there is one).
DATA_LAYOUTS = ("domains", "pairs", "classes")
# the layout each of vgzoo's dataset classes reads, for a task that names none
_DATASET_LAYOUTS = {"vgzoo.data.unaligned:UnalignedDataset": "domains", "vgzoo.data.aligned:AlignedDataset": "pairs",
                    "vgzoo.data.labelled:LabelledImageFolder": "classes"}


class UnknownTaskError(VgzooError, ValueError):
    """A task name that neither vgzoo nor an installed plugin defines."""


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class Task:
    """One task.

    Attributes:
        name: the task's name (``pretrained_cfg["task"]`` of its models).
        summary: one line for people.
        batch_keys: the keys of a dataset item / training batch (``("A", "B")`` for translation).
        dataset: ``"module:Class"`` of the dataset a folder spec gets (:func:`vgzoo.data.create_dataset`).
        transform: ``"module:function"``: ``function(cfg, train) -> (transform class, kwargs)`` for
            :func:`vgzoo.augment.create_transform`.
        recipe: ``"module:Class"`` of the training recipe (:mod:`vgzoo.train.recipes`).
        protocols: ``"module:Class"`` of every protocol a model of this task must be an instance of.
        output: what ``forward(*example_inputs())`` gives: ``"logits"`` (B, num_classes), ``"sample"`` (B, *input_size)
            or ``"image"`` (B, out_chans, H, W) of the input's size.
        stats: the default normalisation: ``"gan"`` (mean = std = 0.5) or ``"imagenet"``.
        aliases: other names accepted for this task.
        pipeline_tag: the Hugging Face Hub's pipeline tag for model cards (None where none fits).
        summary_for_card: what a model of this task is, for its card ("an image classifier"); default from the name.
        usage: how to use a model, for its card: ``(imports, code, commands)``, lines where ``{src}`` stands for the
            model's ``hf-hub:`` source.
        demo_page: the ``vgzoo demo`` page layout: ``"translation"``, ``"generation"``, ``"classification"`` or
            ``"restoration"``; None picks one from ``output`` (so a plugin task gets a page too).
        data_layout: how ``vgzoo eval`` finds a split in a DATA folder, one of :data:`DATA_LAYOUTS`; None takes the
            layout of ``dataset`` when it is one of vgzoo's (a plugin task reusing one gets it too), else none.
        distribution: the distribution that defines it (``"vgzoo"`` for the built-ins).
    """

    name: str
    summary: str
    batch_keys: tuple[str, ...]
    dataset: str
    transform: str
    recipe: str
    protocols: tuple[str, ...]
    output: str
    stats: str = "gan"
    aliases: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    summary_for_card: str = ""
    usage: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
    demo_page: str | None = None
    data_layout: str | None = None
    distribution: str = field(default="vgzoo", compare=False)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"Task {self.name!r}: output={self.output!r}, expected one of {', '.join(OUTPUTS)}.")
        if self.stats not in ("gan", "imagenet"):
            raise ValueError(f"Task {self.name!r}: stats={self.stats!r}, expected 'gan' or 'imagenet'.")
        if self.demo_page is not None and self.demo_page not in DEMO_PAGES:
            raise ValueError(f"Task {self.name!r}: demo_page={self.demo_page!r}, expected one of "
                             f"{', '.join(DEMO_PAGES)}.")
        if self.data_layout is not None and self.data_layout not in DATA_LAYOUTS:
            raise ValueError(f"Task {self.name!r}: data_layout={self.data_layout!r}, expected one of "
                             f"{', '.join(DATA_LAYOUTS)}.")

    @property
    def page(self) -> str:
        """The demo page layout: ``demo_page``, else the one that fits what ``forward`` gives."""
        by_output = {"logits": "classification", "sample": "generation", "image": "restoration"}
        return self.demo_page or by_output[self.output]

    @property
    def layout(self) -> str | None:
        """The DATA folder layout of ``vgzoo eval``: ``data_layout``, else the one ``dataset`` reads (None: none)."""
        return self.data_layout or _DATASET_LAYOUTS.get(self.dataset)

    @property
    def card_summary(self) -> str:
        return self.summary_for_card or f"a {self.name} model"

    @property
    def labelled(self) -> bool:
        """Whether a batch carries class labels (a classifier's targets, a conditional generator's classes)."""
        return "label" in self.batch_keys

    def dataset_class(self) -> type:
        return _load(self.dataset)

    def transform_factory(self):
        return _load(self.transform)

    def recipe_class(self) -> type:
        return _load(self.recipe)

    def protocol_classes(self) -> tuple[type, ...]:
        return tuple(_load(p) for p in self.protocols)

    @property
    def builtin_view(self) -> str | None:
        """How ``builtin:digits`` serves this task: ``"labelled"``, ``"images"`` (labels dropped) or None."""
        keys = set(self.batch_keys)
        if keys == {"image", "label"}:
            return "labelled"
        return "images" if keys == {"image"} else None

    def missing_protocols(self, model: Any) -> list[type]:
        """The protocol classes ``model`` is not an instance of."""
        return [cls for cls in self.protocol_classes() if not isinstance(model, cls)]

    def check_model(self, model: Any) -> None:
        """Raise TypeError naming what ``model`` lacks to be a model of this task."""
        missing = self.missing_protocols(model)
        if missing:
            needs = sorted({m for cls in missing for m in getattr(cls, "__abstractmethods__", ())})
            raise TypeError(
                f"{type(model).__name__} is not a model of task {self.name!r}: it must subclass "
                f"{', '.join(f'{c.__module__}.{c.__name__}' for c in missing)}"
                + (f" (implementing {', '.join(n + '()' for n in needs)})" if needs else "") + "; see docs/plugins.md."
            )


def _builtin(name, summary, keys, dataset, transform, recipe, protocols, output, **kw) -> Task:
    return Task(name, summary, keys, f"vgzoo.data.{dataset}", f"vgzoo.augment:{transform}",
                f"vgzoo.train.recipes:{recipe}", tuple(f"vgzoo.protocols:{p}" for p in protocols), output, **kw)


_TRANSLATE_USAGE = (("from vgzoo.translate import translate",),
                    ('translate("{src}", "photos/", "translated/")  # a file or a folder, any image size',),
                    ("vgzoo translate {src} photos/ translated/",))

BUILTIN_TASKS: dict[str, Task] = {t.name: t for t in (
    _builtin("classification", "an image to class logits", ("image", "label"), "labelled:LabelledImageFolder",
             "classification_pipeline", "ClassificationRecipe", ("ZooModel", "Classifier"), "logits",
             stats="imagenet", pipeline_tag="image-classification", summary_for_card="an image classifier",
             usage=((), ("model.eval()", "# x: (B, C, H, W) normalised as described above",
                         "probs = model(x).softmax(-1)"),
                    ("vgzoo attention-map {src} image.png --out attention.png   # ViTs: attention rollout",)),
             demo_page="classification"),
    _builtin("paired_translation", "an image of domain A to its paired image of domain B", ("A", "B"),
             "aligned:AlignedDataset", "paired_pipeline", "Pix2PixRecipe", ("GANModel", "Translator"), "image",
             pipeline_tag="image-to-image",
             summary_for_card="an image-to-image translation GAN trained on aligned pairs",
             usage=_TRANSLATE_USAGE, demo_page="translation"),
    _builtin("unpaired_translation", "images of domain A to domain B and back, learnt from unpaired sets",
             ("A", "B"), "unaligned:UnalignedDataset", "unpaired_pipeline", "CycleGANRecipe",
             ("GANModel", "Translator"), "image", aliases=("unaligned_translation",), pipeline_tag="image-to-image",
             summary_for_card="an unpaired image-to-image translation GAN (two generators, A to B and B to A)",
             usage=(_TRANSLATE_USAGE[0], _TRANSLATE_USAGE[1],
                    ("vgzoo translate {src} photos/ translated/   # --direction BtoA for the other way",)),
             demo_page="translation"),
    _builtin("conditional_generation", "images of chosen classes from noise", ("image", "label"),
             "labelled:LabelledImageFolder", "images_pipeline", "ConditionalGANRecipe",
             ("GANModel", "ConditionalSampler"), "sample", summary_for_card="a class-conditional image generator",
             usage=(("from vgzoo.generate import generate",),
                    ('generate("{src}", out="grid.png", per_class=8, seed=0)  # one row per class',),
                    ("vgzoo generate {src} --all-classes --out grid.png",)),
             demo_page="generation"),
    _builtin("generation", "images from noise", ("image",), "single:ImageFolderDataset", "images_pipeline",
             "GANRecipe", ("GANModel",), "sample", pipeline_tag="unconditional-image-generation",
             summary_for_card="an unconditional image generator",
             usage=((), ("model.eval()", "images = model.sample(16)  # (16, C, H, W) in [-1, 1]"), ()),
             demo_page="generation"),
    _builtin("restoration", "a degraded image to its clean version", ("image",), "single:ImageFolderDataset",
             "images_pipeline", "RestorationRecipe", ("GANModel", "Restorer"), "image",
             pipeline_tag="image-to-image", summary_for_card="an image restoration GAN",
             usage=((), ("model.eval()", "# clean: (B, C, H, W) in [-1, 1]", "restored = model(model.degrade(clean))"),
                    ()),
             demo_page="restoration"),
)}
TASK_NAMES = tuple(BUILTIN_TASKS)

TASKS = EntryPointGroup(ENTRY_POINT_GROUP, "task", builtin_names=TASK_NAMES)
_plugin_tasks: dict[str, Task] = {}  # loaded from entry points, or added at run time by register_task


def _load_plugin(name: str) -> Task:
    if name in _plugin_tasks:
        return _plugin_tasks[name]
    record = TASKS.resolve(name)
    task = TASKS.load(record)
    if not (isinstance(task, Task) and task.name == name):
        raise PluginError(f"Cannot load task {name!r}: {record.where} is not a vgzoo.tasks.Task named {name!r}")
    _plugin_tasks[name] = task
    return task


def get_task(name: str) -> Task:
    """The record of task ``name`` (an alias works too).

    Raises:
        UnknownTaskError: no built-in task and no installed plugin has that name.
        PluginError: a plugin defines it but does not load (the message says why).
    """
    for task in BUILTIN_TASKS.values():
        if name == task.name or name in task.aliases:
            return task
    if name in TASKS.records():
        return _load_plugin(name)
    if name in _plugin_tasks:
        return _plugin_tasks[name]
    for task in _plugin_tasks.values():
        if name in task.aliases:
            return task
    raise UnknownTaskError(f"unknown task {name!r}; known tasks: {', '.join(list_tasks())} (a plugin adds one "
                           f"through an entry point of group {ENTRY_POINT_GROUP!r}).")


def list_tasks() -> list[str]:
    """Names of the built-in tasks, then those of installed task plugins (from metadata; nothing imported)."""
    return [*BUILTIN_TASKS, *sorted((set(TASKS.records()) | set(_plugin_tasks)) - set(BUILTIN_TASKS))]


def plugin_tasks() -> list[dict[str, str]]:
    """Every ``vgzoo.tasks`` entry point with whether it loads: ``{"name", "entry_point", "distribution",
    "status", "error"}`` (the model plugins' report has the same fields)."""
    return TASKS.report(_load_plugin)


def tasks_offering(needs: type | tuple[type, ...]) -> list[str]:
    """The installed tasks whose models must be one of ``needs`` (what an error names when a model is none)."""
    needs = needs if isinstance(needs, tuple) else (needs,)
    return [name for name in list_tasks()
            if any(issubclass(cls, needs) for cls in get_task(name).protocol_classes())]


def register_task(task: Task) -> Task:
    """Add a task at run time (a script or a test; installed plugins use the entry point)."""
    if task.name in BUILTIN_TASKS:
        raise ValueError(f"register_task: {task.name!r} is a built-in task.")
    _plugin_tasks[task.name] = task
    return task


def is_task(name: str) -> bool:
    try:
        get_task(name)
    except (UnknownTaskError, PluginError):
        return False
    return True
