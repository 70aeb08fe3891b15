"""What a file passed as a checkpoint is, told before ``torch.load`` reads it.

``torch.load(..., weights_only=True)`` answers JSON, a NumPy array, a gzip
file or random bytes with an unpickling error, which reads like a refusal of
unsafe code. :func:`sniff_checkpoint` looks at the leading bytes (and, for a
zip archive, its member names; for a plain pickle, its opcodes, without
unpickling it) and says what the file is instead.
"""

import json
import pickletools
import zipfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ['FileKind', 'sniff_checkpoint']

#: Bytes read to tell what a file is.
SNIFF_BYTES = 512

#: Torch's magic number as a 10-byte pickled long: the first record of a
#: legacy (pre-zip) ``torch.save`` file.
_LEGACY_TORCH_MAGIC = b'\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19'
#: Its start with pickle protocol 2 (torch's default) or 3, which
#: ``torch.load(weights_only=True)`` reads.
_LEGACY_TORCH_STARTS = tuple(
    b'\x80' + bytes([protocol]) + _LEGACY_TORCH_MAGIC for protocol in (2, 3)
)
#: Offset of the magic number with protocol 4 or 5, after a FRAME opcode.
_FRAMED_MAGIC_AT = 11
#: Leading bytes of files that are often passed by mistake, and what they are.
_FILE_MAGIC = (
    *(
        (
            magic,
            f'{article} {kind}-compressed file (if it holds a checkpoint, '
            'decompress it first)',
        )
        for magic, article, kind in (
            (b'\x1f\x8b', 'a', 'gzip'),
            (b'BZh', 'a', 'bzip2'),
            (b'\xfd7zXZ\x00', 'an', 'xz'),
            (b'\x28\xb5\x2f\xfd', 'a', 'zstd'),
        )
    ),
    (b'\x93NUMPY', 'a NumPy .npy array'),
    (b'\x89HDF\r\n\x1a\n', 'an HDF5 file (Keras or h5py weights?)'),
)
#: Pickle opcodes that import or call something: unpickling them runs code.
_CODE_OPCODES = frozenset(
    {'GLOBAL', 'STACK_GLOBAL', 'INST', 'OBJ', 'REDUCE', 'NEWOBJ', 'NEWOBJ_EX'}
)


@dataclass(frozen=True)
class FileKind:
    """What a file that ``torch.load`` should not be given is."""

    #: What it is, after "it is": ``'a NumPy .npy array'``.
    description: str
    #: Whether it is a pickle that would import and call code.
    runs_code: bool = False


def sniff_checkpoint(path: Path) -> FileKind | None:
    """Say what a file is when it is not a ``torch.save`` file.

    Args:
        path: an existing regular file.

    Returns:
        What the file is, or None for a file that ``torch.load`` should read:
        a zip archive with a ``data.pkl`` record, a damaged zip archive (which
        ``torch.load`` reports) or a legacy (pre-zip) torch file.

    Raises:
        OSError: if the file cannot be read.
    """
    with path.open('rb') as file:
        head = file.read(SNIFF_BYTES)
    kind = _describe(path, head)
    return FileKind(kind) if isinstance(kind, str) else kind


#: What marks the stack in :func:`_pickle_imports` (the ``MARK`` opcode).
_MARK = object()
#: Opcodes that push their argument, a string, on the stack.
_STRING_RESULTS = (pickletools.pyunicode, pickletools.pybytes_or_str)
#: Opcodes that push a value of the memo, and that store the top of the stack.
_MEMO_GETS = frozenset({'GET', 'BINGET', 'LONG_BINGET'})
_MEMO_PUTS = frozenset({'PUT', 'BINPUT', 'LONG_BINPUT'})


def _pickle_imports(path: Path, *, whole: bool = False) -> list[str] | None:
    """The globals a plain pickle would import, without unpickling it.

    The pickle's stack and memo are followed with the strings on them only
    (every other value is None), so that a ``STACK_GLOBAL`` is named from the
    two strings it pops, pushed as literals or fetched from the memo.

    Args:
        path: the file.
        whole: count the file as a pickle only if its ``STOP`` is its last
            byte (for protocols 0 and 1, which have no header to tell them).

    Returns:
        ``module.name`` of every global (``'?'`` where it is not a literal),
        empty for a pickle of plain data, None if the pickle is damaged.
    """
    names: list[str] = []
    stack: list[object] = []
    memo: dict[object, object] = {}
    try:
        with path.open('rb') as file:
            for opcode, arg, _ in pickletools.genops(file):
                name = opcode.name
                if name == 'MARK':
                    stack.append(_MARK)
                    continue
                if name == 'MEMOIZE' or name in _MEMO_PUTS:
                    memo[len(memo) if name == 'MEMOIZE' else arg] = (
                        stack[-1] if stack else None
                    )
                    continue
                if name == 'DUP':
                    stack.append(stack[-1] if stack else None)
                    continue
                before = opcode.stack_before
                count = len(before)
                if pickletools.markobject in before:
                    while stack and stack.pop() is not _MARK:
                        pass
                    count = before.index(pickletools.markobject)
                popped = [stack.pop() if stack else None for _ in range(count)]
                if name == 'GLOBAL' or name == 'INST':
                    names.append(str(arg).replace(' ', '.'))
                elif name == 'STACK_GLOBAL':
                    qualname, module = popped
                    literal = isinstance(module, str) and isinstance(qualname, str)
                    names.append(f'{module}.{qualname}' if literal else '?')
                elif name in _CODE_OPCODES and not names:
                    names.append('?')
                after = opcode.stack_after
                if name in _MEMO_GETS:
                    stack.append(memo.get(arg))
                elif len(after) == 1 and after[0] in _STRING_RESULTS:
                    stack.append(arg)
                else:
                    stack.extend(None for _ in after)
            if whole and file.read(1):
                return None
    except Exception:  # any parse failure: a damaged pickle
        return None
    return names


def _runs_code(imports: list[str], what: str = 'a plain Python pickle') -> FileKind:
    """A pickle that would import ``imports`` when unpickled."""
    shown = ', '.join(dict.fromkeys(imports))
    return FileKind(
        f'{what} whose unpickling would run code (it calls {shown})', runs_code=True
    )


def _zip_members(path: Path) -> list[str] | None:
    """Member names of a zip archive, None if it cannot be read as one."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def _looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file are UTF-8 text (cut anywhere).

    Up to three bytes may be dropped (a final character cut by the read), but
    some text must remain: one to three stray bytes are not a text file.
    """
    text = head.decode('utf-8', errors='ignore')
    if not text or len(text.encode()) < len(head) - 3:
        return False
    return all(char.isprintable() or char in '\t\r\n' for char in text)


def _is_json(path: Path) -> bool:
    """Whether a (text) file parses as JSON; files over 16 MiB are not tried."""
    if path.stat().st_size > 1 << 24:
        return False
    try:
        json.loads(path.read_bytes())
    except ValueError:
        return False
    return True


def _describe(path: Path, head: bytes) -> FileKind | str | None:
    """:func:`sniff_checkpoint` on the first bytes ``head`` of ``path``."""
    if not head:
        return 'an empty file (0 bytes)'
    if head.startswith((b'PK\x03\x04', b'PK\x05\x06')):
        members = _zip_members(path)
        if members is None or any(
            name == 'data.pkl' or name.endswith('/data.pkl') for name in members
        ):
            return None
        if members and all(name.endswith('.npy') for name in members):
            return 'a NumPy .npz archive'
        shown = ', '.join(members[:3]) + (', ...' if len(members) > 3 else '')
        return f'a zip archive without a torch record (members: {shown or "none"})'
    if head.startswith(_LEGACY_TORCH_STARTS):
        return None
    if (
        head[:1] == b'\x80'
        and head[1:2] in (b'\x04', b'\x05')
        and head[2:3] == b'\x95'  # FRAME
        and head[_FRAMED_MAGIC_AT:].startswith(_LEGACY_TORCH_MAGIC)
    ):
        return (
            f'a legacy (pre-zip) torch file of pickle protocol {head[1]}, which '
            'torch.load(weights_only=True) does not read (it reads protocols 2 '
            "and 3): load it where you trust it and save it again in torch's "
            'default format'
        )
    for magic, description in _FILE_MAGIC:
        if head.startswith(magic):
            return description
    if len(head) >= 262 and head[257:262] == b'ustar':
        return 'a tar archive'
    if len(head) > 10 and head[8:10] == b'{"':
        return 'a safetensors file (not a format this loader reads)'
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        imports = _pickle_imports(path)
        if imports is None:
            return 'a damaged Python pickle'
        if imports:
            return _runs_code(imports)
        return 'a Python pickle of plain data (no tensors)'
    # protocols 0 and 1 have no header: a whole pickle that imports something
    headless = _pickle_imports(path, whole=True)
    if headless:
        return _runs_code(headless, 'a plain Python pickle of protocol 0 or 1')
    if _looks_like_text(head):
        return 'a JSON file' if _is_json(path) else 'a text file'
    return f'unrecognised data (first bytes {head[:8].hex(" ")})'
