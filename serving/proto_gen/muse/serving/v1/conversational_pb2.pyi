from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConverseRequest(_message.Message):
    __slots__ = ("session_id", "text", "image", "image_item_id", "k", "user_id", "dialogue", "context", "stateless")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DIALOGUE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    STATELESS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    text: str
    image: bytes
    image_item_id: int
    k: int
    user_id: int
    dialogue: _containers.RepeatedCompositeFieldContainer[DialogueTurn]
    context: _containers.ScalarMap[str, str]
    stateless: bool
    def __init__(self, session_id: _Optional[str] = ..., text: _Optional[str] = ..., image: _Optional[bytes] = ..., image_item_id: _Optional[int] = ..., k: _Optional[int] = ..., user_id: _Optional[int] = ..., dialogue: _Optional[_Iterable[_Union[DialogueTurn, _Mapping]]] = ..., context: _Optional[_Mapping[str, str]] = ..., stateless: _Optional[bool] = ...) -> None: ...

class DialogueTurn(_message.Message):
    __slots__ = ("role", "text", "image", "image_item_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    role: str
    text: str
    image: bytes
    image_item_id: int
    def __init__(self, role: _Optional[str] = ..., text: _Optional[str] = ..., image: _Optional[bytes] = ..., image_item_id: _Optional[int] = ...) -> None: ...

class RecommendedItem(_message.Message):
    __slots__ = ("item_id", "score", "log_prob", "cosine", "title")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LOG_PROB_FIELD_NUMBER: _ClassVar[int]
    COSINE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    item_id: int
    score: float
    log_prob: float
    cosine: float
    title: str
    def __init__(self, item_id: _Optional[int] = ..., score: _Optional[float] = ..., log_prob: _Optional[float] = ..., cosine: _Optional[float] = ..., title: _Optional[str] = ...) -> None: ...

class ConverseAssignment(_message.Message):
    __slots__ = ("layer", "experiment", "variant")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    layer: str
    experiment: str
    variant: str
    def __init__(self, layer: _Optional[str] = ..., experiment: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class ConverseResponse(_message.Message):
    __slots__ = ("items", "rewritten_query", "query_image_item_id", "model_version", "assignments", "beams", "alpha", "session_turns")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REWRITTEN_QUERY_FIELD_NUMBER: _ClassVar[int]
    QUERY_IMAGE_ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    BEAMS_FIELD_NUMBER: _ClassVar[int]
    ALPHA_FIELD_NUMBER: _ClassVar[int]
    SESSION_TURNS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RecommendedItem]
    rewritten_query: str
    query_image_item_id: int
    model_version: str
    assignments: _containers.RepeatedCompositeFieldContainer[ConverseAssignment]
    beams: int
    alpha: float
    session_turns: int
    def __init__(self, items: _Optional[_Iterable[_Union[RecommendedItem, _Mapping]]] = ..., rewritten_query: _Optional[str] = ..., query_image_item_id: _Optional[int] = ..., model_version: _Optional[str] = ..., assignments: _Optional[_Iterable[_Union[ConverseAssignment, _Mapping]]] = ..., beams: _Optional[int] = ..., alpha: _Optional[float] = ..., session_turns: _Optional[int] = ...) -> None: ...
