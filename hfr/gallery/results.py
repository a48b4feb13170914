"""What a gallery search returns: per-image results (`SearchResult`) and per-subject results.

Scores are cosine similarities, best first. A place with no result (an IVF search that
visited too few lists, or a probe with fewer distinct subjects than asked) has id -1,
score -inf and empty strings.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from hfr.errors import ArgumentError


@dataclass
class GalleryEntry:
    """One gallery vector's metadata: stable id, subject, modality and source image path."""

    id: int
    subject: str
    modality: str
    path: str


@dataclass
class SearchResult:
    """The k nearest gallery vectors of each probe, best first.

    `scores` (Q, k) float32 are cosine similarities, `ids` (Q, k) int64 the gallery ids;
    `subjects`, `modalities`, `paths` (Q, k) are object arrays of strings looked up at
    search time (so they stay valid after later removes). A place with no result (IVF
    visiting too few lists) has id -1, score -inf and empty strings.
    """

    scores: np.ndarray
    ids: np.ndarray
    subjects: np.ndarray
    modalities: np.ndarray
    paths: np.ndarray

    @property
    def k(self) -> int:
        """The number of results per probe (after clamping to the gallery size)."""
        return int(self.ids.shape[1])

    def __len__(self) -> int:
        """The number of probes."""
        return int(self.ids.shape[0])

    def entries(self, probe: int) -> list[GalleryEntry | None]:
        """The gallery entries found for probe number `probe`, best first (None where missing)."""
        out: list[GalleryEntry | None] = []
        for j in range(self.k):
            gid = int(self.ids[probe, j])
            out.append(
                None
                if gid < 0
                else GalleryEntry(
                    gid, str(self.subjects[probe, j]), str(self.modalities[probe, j]), str(self.paths[probe, j])
                )
            )
        return out


@dataclass
class SubjectSearchResult:
    """The k best distinct subjects of each probe, best first.

    `subjects[q]` lists the subjects for probe q, `scores` (Q, k) their best cosine score
    over the subject's gallery vectors and `ids` (Q, k) the id of that best vector. A
    probe whose IVF search found fewer than k distinct subjects has id -1, score -inf and
    subject "" in the remaining places.
    """

    subjects: list[list[str]]
    scores: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        """The number of probes."""
        return len(self.subjects)

    def rows(self, probes: Sequence[str] | None = None) -> Iterator[tuple[str, int, str, float]]:
        """Yield (probe, rank, subject, score) with rank counted from 1, skipping empty places.

        `probes` names the probes (for example their image paths); by default their numbers.
        A number of names other than the number of probes is an ArgumentError.
        """
        if probes is not None and len(probes) != len(self.subjects):
            raise ArgumentError(f"got {len(probes)} probe names for {len(self.subjects)} probes")
        for q, subjects in enumerate(self.subjects):
            name = str(q) if probes is None else str(probes[q])
            for rank, subject in enumerate(subjects, start=1):
                if self.ids[q, rank - 1] >= 0:
                    yield name, rank, subject, float(self.scores[q, rank - 1])


def distinct_subjects(result: SearchResult, k: int) -> tuple[SubjectSearchResult, bool]:
    """The k best distinct subjects of each probe among the neighbours in a per-image `result`.

    A subject's score is that of its best vector in `result`. Returns the subject result and
    whether it is complete: every probe has k subjects, or its search already ran out of
    vectors (a -1 id in its last place), so searching deeper cannot change the answer.
    """
    found, scores = result.ids, result.scores
    q, depth = found.shape
    out_subjects: list[list[str]] = []
    out_scores = np.full((q, k), -np.inf, np.float32)
    out_ids = np.full((q, k), -1, np.int64)
    complete = True
    for i in range(q):
        seen: list[str] = []
        seen_set: set[str] = set()
        for j in range(depth):
            if found[i, j] < 0:
                break
            subject = result.subjects[i, j]
            if subject in seen_set:
                continue
            seen_set.add(subject)
            out_scores[i, len(seen)] = scores[i, j]
            out_ids[i, len(seen)] = found[i, j]
            seen.append(subject)
            if len(seen) == k:
                break
        if len(seen) < k:
            complete = complete and found[i, -1] < 0
        out_subjects.append(seen + [""] * (k - len(seen)))
    return SubjectSearchResult(out_subjects, out_scores, out_ids), bool(complete)
