"""Which image is on screen: one explicit state machine for opening images (Qt-free).

States: ``IDLE`` (nothing shown: no folder, an empty folder), ``LOADING x`` (x is being decoded;
the image shown before, if any, is *not* editable meanwhile), ``SHOWING x`` (x is on screen and
is the only image edits can reach) and ``FAILED x`` (x could not be opened; the canvas says why,
nothing is editable, D / A move on from x).

Requests never get lost: a request while loading replaces the one being loaded (the latest
wins), and a request for the image that was showing before the load cancels the load — so D then
A before the next image appears lands back where the person was, never on the image D asked for.
Steps (D / A) are taken from the image last *asked for*, not the one on screen, so quick presses
count in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum


class NavState(Enum):
    IDLE = "idle"
    LOADING = "loading"
    SHOWING = "showing"
    FAILED = "failed"


@dataclass(frozen=True, kw_only=True)
class NavStatus:
    state: NavState
    name: str | None = None  # the image loading / shown / failed
    reason: str = ""  # FAILED: why, for a person
    too_large: bool = False  # FAILED: past the pixel limit (the person may open it anyway)


@dataclass(frozen=True, kw_only=True)
class NavAction:
    """What the caller must do after a request: ``load`` the image ``name``, ``restore`` the image
    that was showing before (cancel the running load), or ``nothing``."""

    kind: str  # "load" | "restore" | "nothing"
    name: str | None = None


NOTHING = NavAction(kind="nothing")


class Navigator:
    def __init__(self) -> None:
        self._status = NavStatus(state=NavState.IDLE)
        self._before: NavStatus = self._status  # what was on screen when the running load began

    @property
    def status(self) -> NavStatus:
        return self._status

    @property
    def state(self) -> NavState:
        return self._status.state

    @property
    def target(self) -> str | None:
        """The image last asked for (loading, shown or failed): where D / A step from."""
        return self._status.name

    # -- requests ---------------------------------------------------------------------------
    def request(self, name: str, *, force: bool = False) -> NavAction:
        """The person asked for ``name`` (D / A / a click in the file list / open anyway)."""
        st = self._status
        if st.state is NavState.LOADING:
            if name == st.name and not force:
                return NOTHING  # already on its way
            before = self._before
            if name == before.name and before.state is NavState.SHOWING and not force:
                self._status = before  # back to the image still on screen: cancel the load
                return NavAction(kind="restore", name=name)
            self._status = NavStatus(state=NavState.LOADING, name=name)  # the latest wins
            return NavAction(kind="load", name=name)
        if name == st.name and st.state is NavState.SHOWING and not force:
            return NOTHING
        self._before = st
        self._status = NavStatus(state=NavState.LOADING, name=name)
        return NavAction(kind="load", name=name)

    def step(self, names: Sequence[str], delta: int) -> str | None:
        """The image ``delta`` places from the one last asked for, in ``names`` (what the file
        list shows); ``None`` past either end. An image not in ``names`` steps to the first."""
        target = self.target
        i = names.index(target) + delta if target in names else 0
        return names[i] if 0 <= i < len(names) else None

    # -- answers ----------------------------------------------------------------------------
    def loaded(self, name: str) -> bool:
        """The loader finished ``name``; True if it is the one wanted (it is now SHOWING)."""
        st = self._status
        if st.state is not NavState.LOADING or st.name != name:
            return False
        self._status = NavStatus(state=NavState.SHOWING, name=name)
        return True

    def failed(self, name: str, reason: str, *, too_large: bool = False) -> bool:
        """``name`` could not be opened; True if it is the one wanted (it is now FAILED)."""
        st = self._status
        if st.state is not NavState.LOADING or st.name != name:
            return False
        self._status = NavStatus(state=NavState.FAILED, name=name, reason=reason, too_large=too_large)
        return True

    def clear(self) -> None:
        """Nothing to show (another folder, an empty folder)."""
        self._status = self._before = NavStatus(state=NavState.IDLE)
