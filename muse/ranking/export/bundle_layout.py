"""The files of a ranking bundle beside its manifest (see :mod:`muse.export.bundle_format`).

```
<bundle>/
  manifest.json          generic header; feature schema version, dataset, model config, feature
                         spec, serving recipe, item-table reference, checkpoint, training state
  score.onnx             ESU + tower over rows (dynamic batch B, top-K K and recent N axes): the
                         reference form, one row per candidate
  score.onnx.data        its weights
  score_requests.onnx    the same over whole requests (per-user work once per request; dynamic
                         requests, candidates, behaviours, K and N axes): what the server runs
  score_requests.onnx.data
  vocab/*.parquet        the dataset's vocabularies (raw id → index)
  item_features.npy      (V_item, 1 + A) int32: category index, then attribute indices, per item index
  user_ids.npy           (U,) int64 sorted raw user ids with a profile
  user_profiles.npy      (U, P) int32 profile feature indices of those users
```

Imports no torch.
"""

GRAPH_FILE = "score.onnx"
REQUEST_GRAPH_FILE = "score_requests.onnx"
VOCABULARY_DIRECTORY = "vocab"
ITEM_FEATURES_FILE = "item_features.npy"
USER_IDS_FILE = "user_ids.npy"
USER_PROFILES_FILE = "user_profiles.npy"
