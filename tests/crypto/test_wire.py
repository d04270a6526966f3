"""The text form of ciphertexts: one canonical text per blob, decoded alone or as a batch."""

from __future__ import annotations

import base64
import itertools

from hypothesis import given
from hypothesis import strategies as st

from piiguard.crypto import wire

# texts close to what a column holds: canonical ones, and near misses of every kind
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_near_texts = st.one_of(
    st.binary(max_size=40).map(wire.to_text),
    st.text(alphabet=_ALPHABET + "+/=\n A\u0660", max_size=40),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).decode()),  # padded
)


@given(st.binary(max_size=64))
def test_a_blob_round_trips_through_its_one_text(blob: bytes) -> None:
    assert wire.from_text(wire.to_text(blob)) == blob


@given(st.lists(_near_texts, max_size=12))
def test_a_batch_decodes_exactly_as_each_text_alone(texts: list[str]) -> None:
    assert wire.from_texts(texts) == [wire.from_text(text) for text in texts]


@given(st.integers(0, 40), st.data())
def test_a_column_of_one_length_with_one_changed_character_decodes_as_each_alone(
    size: int, data: st.DataObject
) -> None:
    """The batch path (texts of one length) holds every check from_text makes: a changed
    character anywhere, unused bits set, a padding or a foreign character."""
    blobs = data.draw(st.lists(st.binary(min_size=size, max_size=size), min_size=1, max_size=8))
    texts = [wire.to_text(blob) for blob in blobs]
    if texts[0]:
        row = data.draw(st.integers(0, len(texts) - 1))
        at = data.draw(st.integers(0, len(texts[row]) - 1))
        swapped = data.draw(st.sampled_from([*_ALPHABET, "+", "/", "=", "\n", "\u0660"]))
        texts[row] = texts[row][:at] + swapped + texts[row][at + 1 :]
    assert wire.from_texts(texts) == [wire.from_text(text) for text in texts]
    unchanged = [n for n, blob in enumerate(blobs) if wire.to_text(blob) == texts[n]]
    assert [wire.from_texts(texts)[n] for n in unchanged] == [blobs[n] for n in unchanged]


@given(st.integers(1, 40), st.data())
def test_a_column_cut_again_at_other_places_decodes_as_each_alone(
    size: int, data: st.DataObject
) -> None:
    """An insider moving characters from one row's text to the next keeps the column's
    total length but not each text's: those texts are decoded one by one, as from_text
    decodes them (seen: ["ZA", "oQbN", ""] was cut as if each were 2 characters)."""
    blobs = data.draw(st.lists(st.binary(min_size=size, max_size=size), min_size=2, max_size=6))
    joined = "".join(wire.to_text(blob) for blob in blobs)
    cuts = sorted(
        data.draw(
            st.lists(st.integers(0, len(joined)), min_size=len(blobs) - 1, max_size=len(blobs) - 1)
        )
    )
    bounds = [0, *cuts, len(joined)]
    texts = [joined[start:end] for start, end in itertools.pairwise(bounds)]
    assert wire.from_texts(texts) == [wire.from_text(text) for text in texts]


def test_texts_of_several_lengths_are_never_cut_as_one_column() -> None:
    assert wire.from_texts(["ZA", "oQbN", ""]) == [
        wire.from_text("ZA"),
        wire.from_text("oQbN"),
        wire.from_text(""),
    ]
