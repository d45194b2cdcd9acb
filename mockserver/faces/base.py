"""The face seam: what a wire dialect provides, and the registry that mounts dialects.

A face owns its contract folder (``contracts/<name>/``), its routes, auth, envelope, status
spelling, id format, timestamp unit and error rendering. The engine, :class:`~mockserver.Service`
and the kit's generic layers know a face only through :class:`Face` and its contract (whose
``reader`` tells the kit where an answer keeps the task id, status, result URL and error).

Adding a dialect is a contract folder plus one module that defines a class with the members of
:class:`Face` and decorates it with :func:`register_face`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from mockserver._frozen import fast_init
from mockserver.contract import Contract, Operation
from mockserver.engine import ContractWarning, Engine, FaultPlan, TaskView
from mockserver.http import ApiRequest, ApiResponse
from mockserver.validation import Violation

__all__ = [
    "DEFAULT_CALLBACK_HOSTS",
    "Face",
    "FaceSettings",
    "Handled",
    "Handler",
    "Mount",
    "Refused",
    "face_names",
    "make_face",
    "register_face",
]

#: Hosts a live server may deliver callbacks to unless told otherwise (loopback only).
DEFAULT_CALLBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


@fast_init
@dataclass(frozen=True, slots=True)
class Handled:
    """A face's answer plus what the journal should know about it."""

    response: ApiResponse
    operation: str | None
    task_id: str | None = None
    request_json: Any = None
    warnings: tuple[ContractWarning, ...] = ()
    fault: str | None = None
    #: the rule a refused request broke and the field it blames (None when accepted)
    rule: str | None = None
    param: str | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """A refusal before any operation ran (auth): the face's answer, the rule, the field."""

    response: ApiResponse
    rule: str
    param: str | None = None


@dataclass(frozen=True, slots=True)
class FaceSettings:
    """What a user configures on every face; each face reads the parts its wire has.

    ``keys``: bearer API keys (None: the contract's ``default_keys``; ``"*"`` accepts any).
    ``key_pairs``: access key -> secret key, for faces that sign tokens (None: the contract's
    default pair). ``strict``: refuse unknown request fields instead of dropping them with a
    warning. ``slots``: unfinished tasks allowed per account (None: the contract's default).
    ``callback_hosts``: hosts callbacks may be delivered to.

    >>> FaceSettings(keys=("sk-a",)).strict
    False
    """

    keys: tuple[str, ...] | None = None
    key_pairs: Mapping[str, str] | None = None
    strict: bool = False
    slots: int | None = None
    callback_hosts: tuple[str, ...] = DEFAULT_CALLBACK_HOSTS


#: ``handler(engine, request, path_params, account) -> Handled``
Handler = Callable[[Engine, ApiRequest, Mapping[str, str], str], Handled]


class Face(Protocol):
    """A wire dialect of the engine.

    ``authenticate`` answers the account a request acts for, or the face's :class:`Refused`;
    ``handlers`` maps each operation id of the contract to the function that answers it.
    """

    name: ClassVar[str]
    contract: Contract
    settings: FaceSettings

    def attach(self, engine: Engine) -> None:
        """Called once when the face is mounted on ``engine`` (faces that mint per-answer
        values, such as request ids, draw them from the engine's seeded streams)."""

    def handlers(self) -> Mapping[str, Handler]: ...

    def authenticate(self, request: ApiRequest, engine: Engine) -> str | Refused: ...

    def error(
        self,
        key: str,
        *,
        param: str | None = None,
        retry_after: float | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        **values: object,
    ) -> ApiResponse: ...

    def fault_response(self, plan: FaultPlan, operation: Operation) -> ApiResponse | None: ...

    def judge_create(self, body: Any, *, kind: str | None = None) -> Violation | None:
        """The refusal this face gives a create whose body parses to ``body`` (sent to the create
        path of ``kind`` on a face with one per kind), None if it would create a task: every
        schema and rule it checks, through any request it maps onto. ``check`` judges recorded
        creates with it, so a recording is held to exactly what the fake would refuse."""
        ...

    def secrets(self) -> Collection[str]:
        """Values this face's auth accepts that no journal, export or log may show in clear
        (API keys, secret keys)."""
        ...

    def callback_body(self, task: TaskView, base_url: str) -> Any: ...


@dataclass(frozen=True, slots=True)
class Mount:
    """A face served under a path ``prefix`` ("" for the root) with its own settings.

    >>> Mount("gateway").prefix
    ''
    """

    face: str
    prefix: str = ""
    settings: FaceSettings | None = None
    #: set by the registry for prefixes a contract declares (``mount_prefixes``)
    options: Mapping[str, Any] = field(default_factory=dict)


_REGISTRY: dict[str, Callable[[FaceSettings], Face]] = {}


def register_face(name: str) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: make a face class available by ``name`` (its contract folder)."""

    def decorate(cls: type[Any]) -> type[Any]:
        _REGISTRY[name] = cls
        return cls

    return decorate


#: the built-in faces in their fixed order (the first is the default face): the order
#: registration happens in depends on which module a program imports first
_BUILTIN_FACES = ("gateway", "official", "openai")


def face_names() -> tuple[str, ...]:
    """The registered faces: the built-in ones in their fixed order (the first is the default
    face; routes are tried in this order), then any other in registration order.

    >>> face_names()
    ('gateway', 'official', 'openai')
    """
    _load_builtin_faces()
    return (*_BUILTIN_FACES, *(name for name in _REGISTRY if name not in _BUILTIN_FACES))


def make_face(name: str, settings: FaceSettings | None = None) -> Face:
    """A new face ``name`` with ``settings`` (unknown names are refused with the known ones)."""
    _load_builtin_faces()
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(f"unknown face {name!r}; known: {', '.join(face_names())}")
    return factory(settings or FaceSettings())


def _load_builtin_faces() -> None:
    # The built-in faces register themselves on import; importing them here (not at module
    # import) keeps ``import mockserver`` from parsing a contract file.
    import mockserver.faces.gateway
    import mockserver.faces.official
    import mockserver.faces.openai  # noqa: F401
