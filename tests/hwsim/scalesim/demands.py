"""A WS fold's IFMAP demands enumerated one by one in SCALE-Sim's service order: the slow, obvious
definition that the stationary and periodic tests compare the closed forms with."""

from __future__ import annotations

from hwsim.scalesim.topology import Shape


def ws_fold_demands(sp: Shape, ks: range) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """The demands of the fold of window indices ``ks``, by diagonal ``t`` then window column: their slots
    ``(t, column)``, their addresses and the indices of the first demand of each address."""
    slots, addrs = [], []
    for t in range(sp.npix + len(ks) - 1):
        for col in range(len(ks)):
            p = t - col
            if not 0 <= p < sp.npix:
                continue
            (orow, ocol), (kr, rem) = divmod(p, sp.ew), divmod(ks[col], sp.s * sp.c)
            kc, ch = divmod(rem, sp.c)
            y, x = orow * sp.sh + kr, ocol * sp.sw + kc
            if y < sp.h and x < sp.w:
                slots.append((t, col))
                addrs.append((y * sp.w + x) * sp.c + ch)
    seen: set[int] = set()
    firsts = []
    for i, a in enumerate(addrs):
        if a not in seen:
            seen.add(a)
            firsts.append(i)
    return slots, addrs, firsts
