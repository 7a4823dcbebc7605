from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreRequest(_message.Message):
    __slots__ = ("user_id", "candidate_item_ids", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    candidate_item_ids: _containers.RepeatedScalarFieldContainer[int]
    context: _containers.ScalarMap[str, str]
    def __init__(self, user_id: _Optional[int] = ..., candidate_item_ids: _Optional[_Iterable[int]] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class Assignment(_message.Message):
    __slots__ = ("layer", "experiment", "variant")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    layer: str
    experiment: str
    variant: str
    def __init__(self, layer: _Optional[str] = ..., experiment: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class ScoreResponse(_message.Message):
    __slots__ = ("scores", "model_version", "assignments")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    model_version: str
    assignments: _containers.RepeatedCompositeFieldContainer[Assignment]
    def __init__(self, scores: _Optional[_Iterable[float]] = ..., model_version: _Optional[str] = ..., assignments: _Optional[_Iterable[_Union[Assignment, _Mapping]]] = ...) -> None: ...

class Behavior(_message.Message):
    __slots__ = ("item_id", "category_id", "timestamp")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    item_id: int
    category_id: int
    timestamp: int
    def __init__(self, item_id: _Optional[int] = ..., category_id: _Optional[int] = ..., timestamp: _Optional[int] = ...) -> None: ...

class AppendBehaviorsRequest(_message.Message):
    __slots__ = ("user_id", "behaviors")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    BEHAVIORS_FIELD_NUMBER: _ClassVar[int]
    user_id: int
    behaviors: _containers.RepeatedCompositeFieldContainer[Behavior]
    def __init__(self, user_id: _Optional[int] = ..., behaviors: _Optional[_Iterable[_Union[Behavior, _Mapping]]] = ...) -> None: ...

class AppendBehaviorsResponse(_message.Message):
    __slots__ = ("accepted", "history_version")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    HISTORY_VERSION_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    history_version: int
    def __init__(self, accepted: _Optional[int] = ..., history_version: _Optional[int] = ...) -> None: ...
