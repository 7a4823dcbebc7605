"""Reserved item, category and feature indices shared by every layer (dense vocabulary indices)."""

PADDING_INDEX = 0  # empty history slot; never a real behaviour
OOV_INDEX = 1  # an id the vocabulary has not seen: real, but carries no learned identity
FIRST_ID_INDEX = 2  # the first index of a known id
