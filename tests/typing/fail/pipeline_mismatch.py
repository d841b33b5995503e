"""A pipeline whose links do not line up is a type error."""

from functional_dl._fn import compose_left, pipe


def to_text(v: int) -> str:
    return str(v)


def double(v: int) -> int:
    return 2 * v


pipe(3, to_text, double)  # E: Cannot infer value of type parameter "B" of "pipe"
compose_left(to_text, double)  # E: Cannot infer value of type parameter "B" of "compose_left"
