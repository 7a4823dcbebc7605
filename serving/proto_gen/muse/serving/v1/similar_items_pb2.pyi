from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SimilarItemsRequest(_message.Message):
    __slots__ = ("item_id", "item", "k", "category", "user_id", "context")
    class ContextEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    item_id: int
    item: NewItem
    k: int
    category: str
    user_id: int
    context: _containers.ScalarMap[str, str]
    def __init__(self, item_id: _Optional[int] = ..., item: _Optional[_Union[NewItem, _Mapping]] = ..., k: _Optional[int] = ..., category: _Optional[str] = ..., user_id: _Optional[int] = ..., context: _Optional[_Mapping[str, str]] = ...) -> None: ...

class NewItem(_message.Message):
    __slots__ = ("image", "title", "content", "topics", "category")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    TOPICS_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    title: str
    content: str
    topics: _containers.RepeatedScalarFieldContainer[str]
    category: str
    def __init__(self, image: _Optional[bytes] = ..., title: _Optional[str] = ..., content: _Optional[str] = ..., topics: _Optional[_Iterable[str]] = ..., category: _Optional[str] = ...) -> None: ...

class SimilarItemsAssignment(_message.Message):
    __slots__ = ("layer", "experiment", "variant")
    LAYER_FIELD_NUMBER: _ClassVar[int]
    EXPERIMENT_FIELD_NUMBER: _ClassVar[int]
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    layer: str
    experiment: str
    variant: str
    def __init__(self, layer: _Optional[str] = ..., experiment: _Optional[str] = ..., variant: _Optional[str] = ...) -> None: ...

class SimilarItemsResponse(_message.Message):
    __slots__ = ("item_ids", "scores", "index_version", "assignments")
    ITEM_IDS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    INDEX_VERSION_FIELD_NUMBER: _ClassVar[int]
    ASSIGNMENTS_FIELD_NUMBER: _ClassVar[int]
    item_ids: _containers.RepeatedScalarFieldContainer[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    index_version: str
    assignments: _containers.RepeatedCompositeFieldContainer[SimilarItemsAssignment]
    def __init__(self, item_ids: _Optional[_Iterable[int]] = ..., scores: _Optional[_Iterable[float]] = ..., index_version: _Optional[str] = ..., assignments: _Optional[_Iterable[_Union[SimilarItemsAssignment, _Mapping]]] = ...) -> None: ...
