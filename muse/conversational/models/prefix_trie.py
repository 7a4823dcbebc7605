"""A prefix trie of the catalogue's semantic IDs: what the constrained beam search may write next.

A real trie (node → children), not a per-position table of allowed tokens: a table would allow
any combination of tokens seen at each position, the trie only prefixes of IDs that exist. Its
nodes are numbered breadth first with each node's children sorted and contiguous, so a node's
allowed tokens are one slice of a flat array; one dict maps (node, token) to the child. Numpy
only, no torch: the server and the beam search walk the same object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PAD_TOKEN = 0  # the semantic ID layout's padding (and decoder start) token
EOS_TOKEN = 1  # the token that ends every decoded ID
NO_ROW = -1  # what row_of answers for a sequence that is no catalogue item's ID
NO_NODE = -1


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class PrefixTrie:
    """The trie of N semantic IDs of T tokens each (one per catalogue row), built by from_sequences.

    A decoded sequence is an ID's T tokens, then EOS, then only PAD: ``allowed`` answers the
    children of a proper prefix, (EOS,) after a complete ID and (PAD,) after its EOS.
    """

    def __init__(
        self,
        node_token: np.ndarray,
        first_child: np.ndarray,
        child_count: np.ndarray,
        leaf_row: np.ndarray,
        id_length: int,
        pad_token: int,
        eos_token: int,
    ) -> None:
        """Arrays over the M nodes (node 0 the root): the token that leads into each node (−1 at
        the root), the first child's node id and the number of children (a node's children are
        nodes first_child … first_child + child_count − 1), and the catalogue row of each leaf
        (−1 elsewhere). Use from_sequences rather than this."""
        self.node_token = _read_only(np.asarray(node_token, dtype=np.int64))
        self.first_child = _read_only(np.asarray(first_child, dtype=np.int64))
        self.child_count = _read_only(np.asarray(child_count, dtype=np.int64))
        self.leaf_row = _read_only(np.asarray(leaf_row, dtype=np.int64))
        self.id_length = int(id_length)
        self.pad_token = int(pad_token)
        self.eos_token = int(eos_token)
        # One key per edge, parent · stride + token: a dict lookup per step of a walk.
        self._stride = int(self.node_token.max()) + 1 if self.num_nodes > 1 else 1
        parents = np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.child_count)
        keys = parents * self._stride + self.node_token[1:]
        self._child_of: dict[int, int] = dict(
            zip(keys.tolist(), range(1, self.num_nodes), strict=False)
        )
        self._only_eos = _read_only(np.array([self.eos_token], dtype=np.int64))
        self._only_pad = _read_only(np.array([self.pad_token], dtype=np.int64))
        self._nothing = _read_only(np.zeros(0, dtype=np.int64))
        self._num_ids = int(np.count_nonzero(self.leaf_row >= 0))

    @classmethod
    def from_sequences(
        cls, tokens: np.ndarray, pad_token: int = PAD_TOKEN, eos_token: int = EOS_TOKEN
    ) -> PrefixTrie:
        """The trie of ``tokens`` (N, T) int64, row n the ID of catalogue row n.

        IDs must be unique and hold neither the PAD nor the EOS token; N ≥ 1, T ≥ 1.
        """
        tokens = np.asarray(tokens)
        if tokens.ndim != 2 or tokens.shape[0] < 1 or tokens.shape[1] < 1:
            raise ValueError(f"tokens must be a non-empty (N, T) matrix, got shape {tokens.shape}")
        if not np.issubdtype(tokens.dtype, np.integer):
            raise ValueError(f"tokens must be integers, got {tokens.dtype}")
        tokens = tokens.astype(np.int64, copy=False)
        if int(tokens.min()) < 0:
            raise ValueError("ID tokens must be ≥ 0")
        special = np.isin(tokens, [pad_token, eos_token])
        if special.any():
            row = int(np.flatnonzero(special.any(axis=1))[0])
            raise ValueError(f"row {row}'s ID {tokens[row].tolist()} holds the PAD or EOS token")
        count, length = tokens.shape
        order = np.lexsort(tokens.T[::-1])  # rows sorted by their ID, first token most significant
        ordered = tokens[order]
        # first_difference[i]: the first position where sorted row i differs from row i − 1.
        differs = np.ones((count, length), dtype=bool)
        differs[1:] = ordered[1:] != ordered[:-1]
        same = ~differs.any(axis=1)
        if same.any():
            i = int(np.flatnonzero(same)[0])
            rows = sorted((int(order[i - 1]), int(order[i])))
            raise ValueError(
                f"rows {rows[0]} and {rows[1]} share the ID {ordered[i].tolist()}: IDs must be unique"
            )
        first_difference = differs.argmax(axis=1)
        # Row i opens a new node at depth d (prefix length d) iff it differs from row i − 1 in
        # its first d tokens. Nodes are numbered depth by depth in sorted order, so each node's
        # parent precedes it and a node's children are contiguous and sorted by token.
        node_of_row = np.zeros(count, dtype=np.int64)  # each sorted row's node at depth d − 1
        tokens_in: list[np.ndarray] = [np.array([-1], dtype=np.int64)]
        counts: list[np.ndarray] = []
        level_start, level_size, next_node = 0, 1, 1
        for depth in range(1, length + 1):
            opens = first_difference < depth
            counts.append(np.bincount(node_of_row[opens] - level_start, minlength=level_size))
            node_of_row = next_node + np.cumsum(opens) - 1
            tokens_in.append(ordered[opens, depth - 1])
            level_start, level_size = next_node, int(opens.sum())
            next_node += level_size
        counts.append(np.zeros(level_size, dtype=np.int64))  # the leaves
        node_token = np.concatenate(tokens_in)
        child_count = np.concatenate(counts).astype(np.int64)
        first_child = 1 + np.concatenate([[0], np.cumsum(child_count)[:-1]])
        leaf_row = np.full(next_node, NO_ROW, dtype=np.int64)
        leaf_row[node_of_row] = order
        return cls(node_token, first_child, child_count, leaf_row, length, pad_token, eos_token)

    @property
    def num_nodes(self) -> int:
        """M, the root and one node per distinct prefix of length 1 … T."""
        return int(self.node_token.shape[0])

    @property
    def num_ids(self) -> int:
        """N, the number of IDs (catalogue rows)."""
        return self._num_ids

    def child(self, node: int, token: int) -> int:
        """The node reached from ``node`` by ``token``, or −1 where no ID continues so."""
        if node < 0 or not 0 <= token < self._stride:
            return NO_NODE
        return self._child_of.get(node * self._stride + token, NO_NODE)

    def node_of(self, prefix: Sequence[int] | np.ndarray) -> int:
        """The node of an ID prefix of at most T tokens, or −1 if no ID starts so."""
        node = 0
        for token in prefix:
            node = self.child(node, int(token))
            if node < 0:
                return NO_NODE
        return node

    def allowed(self, prefix: Sequence[int] | np.ndarray) -> np.ndarray:
        """The tokens that may follow ``prefix`` (the decoded tokens so far, no start token).

        A proper ID prefix: its children's tokens, ascending; a complete ID: (EOS,); a complete
        ID then EOS and any PADs: (PAD,); anything else: empty. A read-only int64 array.
        """
        prefix = [int(token) for token in prefix]
        length = self.id_length
        node = self.node_of(prefix[:length])
        if node < 0:
            return self._nothing
        if len(prefix) < length:
            start = int(self.first_child[node])
            return self.node_token[start : start + int(self.child_count[node])]
        if len(prefix) == length:
            return self._only_eos
        if prefix[length] == self.eos_token and all(
            t == self.pad_token for t in prefix[length + 1 :]
        ):
            return self._only_pad
        return self._nothing

    def row_of(self, sequence: Sequence[int] | np.ndarray) -> int:
        """The catalogue row whose ID ``sequence`` is, or −1.

        ``sequence`` is an ID's T tokens, optionally followed by EOS and then only PADs (as the
        beam search writes it); anything else, a proper prefix included, is no row.
        """
        sequence = [int(token) for token in sequence]
        length = self.id_length
        if len(sequence) < length:
            return NO_ROW
        tail = sequence[length:]
        if tail and (tail[0] != self.eos_token or any(t != self.pad_token for t in tail[1:])):
            return NO_ROW
        node = self.node_of(sequence[:length])
        return int(self.leaf_row[node]) if node >= 0 else NO_ROW

    def contains(self, sequence: Sequence[int] | np.ndarray) -> bool:
        """Whether ``sequence`` is a catalogue item's complete ID (see row_of)."""
        return self.row_of(sequence) != NO_ROW
