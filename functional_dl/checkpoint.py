"""Checkpoints: params, non-trained state and optimizer state in one validated ``.npz`` file.

What can be saved is a *tree* of plain data: mappings with ``str`` keys (``dict``, and
:class:`~functional_dl.params.FrozenParams`, restored as such), ``NamedTuple``s, tuples, lists,
NumPy arrays and scalars of numeric dtype (not a masked array, whose mask the file would
lose, nor an ``np.matrix``, which would load as a plain array), and Python ``int``, ``float``,
``bool``, ``str`` and ``None``. That covers params, :data:`~functional_dl.types.Buffers`, every
optimizer state (:class:`~functional_dl.optim.base.OptimizerState` and the ``<Name>Buffers``
tuples inside it) and a training state holding all three.

File format (version 1): an uncompressed NumPy ``.npz`` (a zip of ``.npy`` members) with

* ``__header__``: the UTF-8 bytes of a JSON document: format name and version, and the tree with
  every leaf described in place (arrays by member name, shape, dtype and the SHA-256 of their
  bytes; Python scalars by value, floats as exact ``float.hex`` strings);
* ``__digest__``: the SHA-256 of the header bytes, so any change to the header is detected;
* ``a0``, ``a1``, ...: the arrays, stored uncompressed.

What the checksums guarantee: they are unkeyed SHA-256 digests, so they detect *corruption* (a
truncated download, a flipped bit, an edited array that was not re-hashed), not *tampering*: anyone
who can write the file can recompute them. Treat a checkpoint from an untrusted source as untrusted
data; loading it is still safe in the sense that it never unpickles and never imports a type.

Loading reads it with ``np.load(..., allow_pickle=False)`` and checks everything before returning:
the digest, the header's schema, that the members are exactly the arrays the header names and are
stored uncompressed, each member's size before reading it, each array's shape, dtype and checksum.
The work and memory of a load are therefore bounded by the size of the file, with or without a
template (a compressed "zip bomb" is refused before it is inflated), and the checksum is computed
on each array as read, without a second copy. Trees nest at most 64 levels deep
(:data:`~functional_dl._checkpoint_tree.MAX_DEPTH`): ``save`` refuses a deeper one, so whatever
saves also loads. With a ``template`` (for
example ``opt.init(params)``) it also checks that the tree has the template's structure, keys,
shapes and dtypes, and rebuilds ``NamedTuple``s as the template's own types. Types are *never*
imported by name from a file: a file that holds a ``NamedTuple`` loads only against a template.
Any problem raises :class:`~functional_dl.errors.CheckpointError` saying what and where.

Writes are atomic: the file is written to a temporary name in the target directory, flushed and
``fsync``-ed, then renamed over the final name with ``os.replace``; a crash leaves either the old
file or the new one, never a partial file under the final name.

Example:
    >>> import os, tempfile
    >>> import numpy as np
    >>> from functional_dl import optim
    >>> params = {"w": np.ones((2, 3), np.float32)}
    >>> opt = optim.sgd(0.1)
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> save(path, {"params": params, "opt": opt.init(params)})
    >>> restored = load(path, template={"params": params, "opt": opt.init(params)})
    >>> type(restored["opt"]).__name__, restored["opt"].step, restored["params"]["w"].dtype
    ('OptimizerState', 0, dtype('float32'))
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Mapping
from typing import Any, TypeVar, overload

import numpy as np

from functional_dl._checkpoint_tree import FORMAT, NO_TEMPLATE, VERSION, Restorer, encode
from functional_dl.errors import CheckpointError

__all__ = ["FORMAT", "VERSION", "load", "read_header", "save"]

T = TypeVar("T")

_HEADER = "__header__"
_DIGEST = "__digest__"
_MAX_HEADER_BYTES = 64 * 2**20
# Room for the .npy member's own header (magic, version, a small dict padded to 64 bytes).
_NPY_OVERHEAD = 4096

PathLike = str | os.PathLike[str]


def _bytes_array(data: bytes) -> np.ndarray[Any, np.dtype[np.uint8]]:
    return np.frombuffer(data, dtype=np.uint8)


def save(path: PathLike, tree: object) -> None:
    """Write ``tree`` to ``path`` as a checkpoint, atomically.

    Args:
        path: the destination, conventionally ending in ``.npz`` (used exactly as given).
        tree: params, state, optimizer state, or any mapping/NamedTuple/tuple of them (see the
            module docstring for what is allowed).

    Raises:
        CheckpointError: ``tree`` holds something that cannot be saved as plain data (an object
            array, a non-``str`` mapping key, an arbitrary object) or nests deeper than 64
            levels; nothing is written then.
        OSError: the file could not be written; any previous file at ``path`` is left intact.
    """
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    header = {"format": FORMAT, "version": VERSION, "tree": encode(tree, "checkpoint", arrays)}
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    members = {
        _HEADER: _bytes_array(header_bytes),
        _DIGEST: _bytes_array(hashlib.sha256(header_bytes).digest()),
        **arrays,
    }
    target = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **members)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file readable by its owner only; give it the mode a plain open() would.
        os.chmod(tmp, _file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        # Whatever failed (disk full, interrupt), the temporary file must not linger.
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _file_mode(target: str) -> int:
    try:
        return os.stat(target).st_mode & 0o777  # overwriting: keep the existing file's mode
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    # Makes the rename itself durable. Not every platform can open a directory; that is harmless.
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _read_member(npz: Any, name: str, max_bytes: int, where: str) -> np.ndarray[Any, Any]:
    info = npz.zip.getinfo(name + ".npy")
    if info.compress_type != zipfile.ZIP_STORED:
        # save stores members uncompressed, so reading one costs at most its size on disk: a
        # compressed member (a zip bomb, whose header may well be consistent) is refused unread.
        raise CheckpointError(
            f"{where}: member {name!r} is compressed; checkpoints store members uncompressed"
        )
    if info.file_size > max_bytes:
        raise CheckpointError(
            f"{where}: member {name!r} is {info.file_size} bytes, more than the {max_bytes} expected"
        )
    arr: np.ndarray[Any, Any] = npz[name]
    return arr


def _open_and_restore(path: PathLike, template: object, lenient: bool) -> tuple[dict[str, Any], object]:
    where = f"checkpoint {os.fspath(path)!r}"
    # We open the file ourselves: np.load leaks its handle when the zip directory is unreadable.
    with open(path, "rb") as f:
        loaded = np.load(f, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise CheckpointError(f"{where}: not an .npz archive (a plain .npy array?)")
        with loaded as npz:
            return _restore_from(npz, where, template, lenient)


def _restore_from(npz: Any, where: str, template: object, lenient: bool) -> tuple[dict[str, Any], object]:
    names = set(npz.files)
    if _HEADER not in names or _DIGEST not in names:
        raise CheckpointError(f"{where}: no checkpoint header; not written by functional_dl.checkpoint")
    header_arr = _read_member(npz, _HEADER, _MAX_HEADER_BYTES, where)
    digest_arr = _read_member(npz, _DIGEST, _NPY_OVERHEAD + 32, where)
    if header_arr.dtype != np.uint8 or header_arr.ndim != 1 or digest_arr.dtype != np.uint8:
        raise CheckpointError(f"{where}: malformed header member")
    header_bytes = header_arr.tobytes()
    if hashlib.sha256(header_bytes).digest() != digest_arr.tobytes():
        raise CheckpointError(f"{where}: header checksum mismatch (the file is corrupt or was modified)")
    header = json.loads(header_bytes.decode("utf-8"))
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CheckpointError(f"{where}: not a {FORMAT} checkpoint")
    if header.get("version") != VERSION:
        raise CheckpointError(
            f"{where}: format version {header.get('version')!r} is not supported (this is {VERSION})"
        )

    def read(name: str, nbytes: int, what: str) -> np.ndarray[Any, Any]:
        if name not in names:
            raise CheckpointError(f"{where}: {what}: array member {name!r} is missing from the file")
        return _read_member(npz, name, nbytes + _NPY_OVERHEAD, f"{where}: {what}")

    restorer = Restorer(read, where, namedtuples_as_tuples=lenient)
    tree = restorer.restore(header.get("tree"), "checkpoint", template)
    extra = names - {_HEADER, _DIGEST} - restorer.used
    if extra:
        raise CheckpointError(f"{where}: unexpected array members {sorted(extra)}, not named in the header")
    return header, tree


def _guarded(path: PathLike, template: object, lenient: bool = False) -> tuple[dict[str, Any], object]:
    try:
        return _open_and_restore(path, template, lenient)
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except Exception as err:
        # Every other failure while decoding an untrusted file (a truncated zip, a damaged .npy
        # header, a pickle refused by allow_pickle=False, malformed JSON) means the same thing.
        raise CheckpointError(
            f"checkpoint {os.fspath(path)!r}: unreadable or corrupt file ({type(err).__name__}: {err})"
        ) from err


@overload
def load(path: PathLike) -> object: ...
@overload
def load(path: PathLike, template: T) -> T: ...
def load(path: PathLike, template: object = NO_TEMPLATE) -> object:
    """Read a checkpoint written by :func:`save`, validating everything.

    Args:
        path: the checkpoint file.
        template: a tree of the expected structure (for example ``{"params": params, "opt":
            opt.init(params)}``). When given, keys, shapes, dtypes and kinds must match it exactly
            and ``NamedTuple``s are rebuilt as the template's types. Without it, trees of
            mappings, tuples, arrays and scalars load as saved; ``NamedTuple``s need a template.

    Returns:
        The restored tree; arrays are new and read-only, mappings saved as ``FrozenParams`` come
        back as ``FrozenParams``.

    Raises:
        CheckpointError: the file is truncated or corrupt (checksums catch corruption, not a
            deliberate edit that re-hashes), holds a compressed member, a pickle or an
            object array, or does not match ``template`` (missing or extra keys, a wrong shape,
            dtype or type); the message names the offending entry.
        FileNotFoundError: there is no file at ``path``.
    """
    return _guarded(path, template)[1]


def read_header(path: PathLike) -> Mapping[str, Any]:
    """The validated JSON header of a checkpoint: format, version and the described tree.

    Reading the header also verifies every array, so a header is only returned for a sound file.
    A ``NamedTuple`` node describes its type as ``"type": "module.QualName"`` (for information only).
    """
    return _guarded(path, NO_TEMPLATE, lenient=True)[0]
