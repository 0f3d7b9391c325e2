"""Request and response bodies of the HTTP service (pydantic models; they are also its OpenAPI schema).

Request bodies are strict: ``k`` and ``top`` are JSON integers (``3.0`` is 3, as in JSON Schema) and
``exclude_seen`` a JSON boolean; ``true`` or ``"3"`` for ``k`` and ``0`` for ``exclude_seen`` are a 422, not a
silent conversion. Ids are raw ids exactly as in the
training data: JSON integers or strings, never booleans. A JSON number
with a zero fraction (``42.0``, which JSON Schema counts as an integer) is the id 42 when it is exact
(|x| <= 2^53); any other float is refused. A string form of an integer id (``"42"``) is accepted where
the model's ids are integers; responses always give ids in the model's own kind.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    StringConstraints,
)

__all__ = [
    "MAX_BATCH_USERS",
    "MAX_EXPLAIN_ITEMS",
    "MAX_ID_CHARS",
    "MAX_K",
    "MAX_LIST",
    "MAX_NEW_ITEMS_PER_REQUEST",
    "MAX_NEW_ITEM_FEATURES",
    "MAX_TOP",
    "BatchExplanation",
    "BatchRecommendation",
    "Contribution",
    "Count",
    "ErrorBody",
    "ExplainRequest",
    "ExplanationBody",
    "FeatureContribution",
    "Health",
    "HistoryBody",
    "HistoryExplainRequest",
    "HistoryRecommendRequest",
    "Id",
    "Info",
    "ItemList",
    "NewItem",
    "NewItemDeleted",
    "NewItemsAdded",
    "NewItemsRequest",
    "Readiness",
    "RecommendRequest",
    "Recommendation",
    "ReloadBody",
    "ScoredItem",
    "SimilarBody",
    "TitledItem",
    "UserExplainRequest",
    "UsersRecommendRequest",
]

#: Longest list length ``k`` (``/recommend``, ``/similar``).
MAX_K = 1000
#: Longest history, exclude or candidates list.
MAX_LIST = 10_000
#: Most users in one batch ``POST /recommend``.
MAX_BATCH_USERS = 256
#: Most items explained by one ``POST /explain``.
MAX_EXPLAIN_ITEMS = 100
#: Most history items returned per explanation.
MAX_TOP = 100
#: Longest string id.
MAX_ID_CHARS = 256
#: Most items in one ``POST /items``.
MAX_NEW_ITEMS_PER_REQUEST = 1000
#: Most features of one new item.
MAX_NEW_ITEM_FEATURES = 10_000

# Floats above 2^53 are not exact integers: an id sent that way has already lost digits in the client.
_EXACT_FLOAT_INT = 2**53


def _integral(value: Any) -> Any:
    """JSON Schema counts ``30.0`` as an integer; take it as the id 30 when exact, refuse it otherwise."""
    if isinstance(value, bool):
        # pydantic turns a ValueError (not a TypeError) into a 422 answer
        raise ValueError("a boolean is not an id")  # noqa: TRY004
    if isinstance(value, float):
        if not value.is_integer() or abs(value) > _EXACT_FLOAT_INT:
            raise ValueError("a number id must be an integer (fractional or too large to be exact)")
        return int(value)
    return value


def _whole(value: Any) -> Any:
    """A count (``k``, ``top``): a JSON integer; ``30.0`` (an integer to JSON Schema) is 30; never a boolean."""
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")  # noqa: TRY004 -- a ValueError is a 422
    if isinstance(value, float):
        if not value.is_integer() or abs(value) > _EXACT_FLOAT_INT:
            raise ValueError("expected an integer, got a fractional number")
        return int(value)
    return value


#: A strict integer: no booleans or numeric strings; an exact float such as ``3.0`` is the integer 3.
Count = Annotated[StrictInt, BeforeValidator(_whole)]

Id = Annotated[
    Annotated[StrictInt, BeforeValidator(_integral)]
    | Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)],
    Field(description="A raw user or item id: an integer or a string, as in the training data."),
]

_STRICT = ConfigDict(extra="forbid")


class ScoredItem(BaseModel):
    item: Id
    score: float = Field(description="The model's score (finite), or the training popularity for a fallback.")
    title: str | None = Field(default=None, description="Present where the server knows item titles.")
    new: bool = Field(default=False, description=(
        "Present (true) for a new item: one given with its features (POST /items or the server's --new-items "
        "file) that has no interactions. The model scores it from its content, calibrated as its cold items, "
        "and ranks it with the catalog; its popularity (fallback score) is 0."))


class TitledItem(BaseModel):
    item: Id
    title: str | None = None


class Recommendation(BaseModel):
    user: Id | None = Field(description=(
        "The user id in the type the model's ids have: an integer for integer ids, a string for string ids. "
        "An unknown user's id is converted to that type where it parses as one (a query string's \"42\" is "
        "42 for integer ids; 42 is \"42\" for string ids) and echoed as sent otherwise. Null for an ad-hoc "
        "history."))
    items: list[ScoredItem]
    strategy: Literal["model", "popularity_fallback"]
    model_version: str
    warnings: list[str]


class BatchRecommendation(BaseModel):
    results: list[Recommendation]
    model_version: str


class _RecommendOptions(BaseModel):
    model_config = _STRICT

    k: Count = Field(default=10, ge=1, le=MAX_K)
    exclude_seen: StrictBool = Field(default=True,
                               description="Drop the users' training items (the history's items).")
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_LIST)
    candidates: list[Id] | None = Field(default=None, max_length=MAX_LIST,
                                        description="Rank only these items (all items when absent).")


class UsersRecommendRequest(_RecommendOptions):
    """Recommendations for a batch of users (unknown ones get the popularity fallback)."""

    users: list[Id] = Field(min_length=1, max_length=MAX_BATCH_USERS)


class HistoryRecommendRequest(_RecommendOptions):
    """Recommendations for an ad-hoc history of item ids, folded into models that can (409 for the others)."""

    history: list[Id] = Field(max_length=MAX_LIST)


#: ``POST /recommend`` takes one of the two bodies (each forbids the other's key).
RecommendRequest = UsersRecommendRequest | HistoryRecommendRequest


class _ExplainOptions(BaseModel):
    model_config = _STRICT

    items: list[Id] = Field(min_length=1, max_length=MAX_EXPLAIN_ITEMS)
    top: Count = Field(default=10, ge=1, le=MAX_TOP)


class UserExplainRequest(_ExplainOptions):
    """Explain several items' scores for a known user."""

    user: Id


class HistoryExplainRequest(_ExplainOptions):
    """Explain several items' scores for an ad-hoc history (models that fold in)."""

    history: list[Id] = Field(max_length=MAX_LIST)


#: ``POST /explain`` takes one of the two bodies.
ExplainRequest = UserExplainRequest | HistoryExplainRequest


class Contribution(BaseModel):
    item: Id
    weight: float
    title: str | None = None


class FeatureContribution(BaseModel):
    feature: str = Field(description="The content column, named as the model names it (its feature_names_, e.g. "
                                     "'genre=Drama' or 'text=neural'; 'feature=3' where it has no names).")
    value: float = Field(description="The item's value in that column.")
    contribution: float = Field(description="'exact': this column's additive share of the score; 'occlusion': "
                                            "the drop in score when the column is set to 0.")


class ExplanationBody(BaseModel):
    """Why a user or history scores an item. ``explains`` says by what: ``"history"``, the user's history
    items (``contributions``); ``"content"``, the item's content features (``features``), for a cold-start
    model's cold item, new item, or a warm item it has no history explanation for (a warning says so)."""

    user: Id | None
    item: Id
    title: str | None = None
    score: float | None = Field(description="The model's score of the item for this user or history.")
    method: str = Field(
        description="History: 'exact', 'integrated_gradients' or 'embedding_similarity (approximate)'. "
                    "Content: 'exact' (content-knn, ridge-map: contributions add up to score - rest) or "
                    "'occlusion' (the other hybrids).")
    approximate: bool = Field(description="Whether the weights are not an exact decomposition of the score "
                                          "(embedding similarity; content occlusion).")
    explains: Literal["history", "content"] = Field(
        default="history", description="'history': contributions are history items; 'content': features are the "
                                       "item's content features (cold-start models, gan4rec.explain_cold).")
    contributions: list[Contribution] = Field(description="History items, largest weight first (empty for "
                                                          "a content explanation).")
    features: list[FeatureContribution] = Field(
        default_factory=list, description="Content explanation: the item's nonzero content features with the "
                                          "largest |contribution|, largest first (up to 'top').")
    total: float | None = Field(description="Sum of the weights over the whole history, or of the contributions of "
                                            "all the item's nonzero content features (see the docs).")
    baseline: float | None = Field(description="Score of an empty history (integrated gradients), or of an "
                                               "all-zero content row (occlusion).")
    rest: float | None = Field(default=None, description="Content, 'exact': the part of the score that does not "
                                                         "depend on the content (score = total + rest).")
    history_size: int = Field(description="Items in the history explained (content: the user's training items).")
    n_features: int | None = Field(default=None, description="Content: the item's nonzero content features.")
    new: bool = Field(default=False, description="Content: the item is a new item (POST /items, --new-items).")
    cold: bool = Field(default=False, description="Content: the item has no training interaction.")
    model_version: str
    warnings: list[str]


class BatchExplanation(BaseModel):
    results: list[ExplanationBody]
    model_version: str


class SimilarBody(BaseModel):
    item: Id
    title: str | None = None
    items: list[ScoredItem]
    method: Literal["fold_in", "embedding_cosine", "cooccurrence_cosine"]
    model_version: str


class HistoryBody(BaseModel):
    user: Id
    items: list[TitledItem]
    total: int = Field(description="Number of training items of the user (items may be cut to 'limit').")
    model_version: str


class ItemList(BaseModel):
    items: list[TitledItem]


_FeatureName = Annotated[StrictStr, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
_FiniteNumber = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class NewItem(BaseModel):
    """An item with content features and no interactions."""

    model_config = _STRICT

    id: Id = Field(description="A new raw item id (of the kind the model's item ids have), not in its catalog.")
    features: dict[_FeatureName, _FiniteNumber] = Field(
        min_length=1, max_length=MAX_NEW_ITEM_FEATURES,
        description="Content as {column: value}; columns not given are 0. Columns are the model's content "
                    "columns: named by its feature_names_ (e.g. a genre, a word), else by index (\"0\", \"1\", ...).")


class NewItemsRequest(BaseModel):
    """New items to rank with the catalog, without retraining (cold-start models only; 409 for the others)."""

    model_config = _STRICT

    items: list[NewItem] = Field(min_length=1, max_length=MAX_NEW_ITEMS_PER_REQUEST)


class NewItemsAdded(BaseModel):
    status: Literal["added"]
    items: list[Id] = Field(description="The ids added, in the model's id kind.")
    new_items: int = Field(description="New items the server now ranks (posted and from its file).")
    model_version: str


class NewItemDeleted(BaseModel):
    status: Literal["deleted"]
    item: Id
    new_items: int = Field(description="New items the server now ranks.")
    model_version: str


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    """Readiness; the other fields are present only with an accepted X-API-Key (or on an open server)."""

    status: Literal["ready"]
    model: str | None = None
    model_version: str | None = None
    loaded_at: str | None = None
    n_users: int | None = None
    n_items: int | None = None
    reloads: int | None = Field(default=None, description="Successful reloads since the process started.")
    refused_reloads: int | None = None
    last_reload_error: str | None = Field(default=None,
                                          description="Why the last reload was refused (null after a success).")
    new_items_error: str | None = Field(
        default=None, description="Why the last re-read of the --new-items file was refused (null after a success).")
    pid: int | None = Field(default=None,
                            description="Process id of the worker that answered (several with --workers).")


class Info(BaseModel):
    model: str
    model_version: str
    n_users: int
    n_items: int
    fold_in: bool = Field(description="Whether POST /recommend accepts an ad-hoc history.")
    explain_method: str | None
    titles: bool
    example_users: list[Id]
    auth: bool = Field(description="Whether the API needs an X-API-Key header.")
    new_items: int = Field(default=0, description="New items (features, no interactions) ranked with the catalog.")
    new_items_reason: str | None = Field(
        default=None, description="Null when the model scores new items (POST /items), else why it cannot.")
    limits: dict[str, int]


class ReloadBody(BaseModel):
    status: Literal["reloaded"]
    model_version: str
    previous_version: str
    workers: Literal["this", "all"] = Field(
        description="'all' when several workers run: each of the others reloads within about a second, "
                    "verifying the artifact itself.")


class ErrorBody(BaseModel):
    detail: str
    errors: list[dict[str, Any]] | None = None
