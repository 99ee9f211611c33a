"""Edit → Settings…: generated from :data:`desktop_app.core.settings_schema.SETTINGS`.

One tab per group; one field per row, chosen by kind (line edit, spin box, check box, combo, a
folder picker, a password field with Show for secrets). A value set by an environment variable is
shown read-only with the variable's name (secrets: only the name). Save validates every field
(the schema's sentences appear under the fields), writes the settings INI through
:class:`AppSettings` and the secrets through :class:`desktop_app.core.secrets.SecretStore`.

Where no system keyring works, the top of the dialog says so and offers "this session only" (the
default) or the owner-only secrets file. "Import .env…" reads the old project's ``.env`` and says
where each value went. The Test buttons run :mod:`desktop_app.core.connection_checks` in a
background thread and show their sentences.
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.core.connection_checks import CHECKS, CheckResult
from desktop_app.core.secrets import SecretOrigin, SecretStore, SecretStoreError, StorageKind, redact
from desktop_app.core.settings_schema import GROUPS, Kind, Setting, dotenv_import, settings_in
from desktop_app.gui.dialogs.background import BackgroundTask
from desktop_app.gui.settings import AppSettings

# the Test buttons of each tab: (button text, CHECKS name)
TESTS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "Remote": (("Test server", "Remote server"), ("Test endpoint", "Remote endpoint")),
    "AWS": (("Test AWS", "AWS"),),
    "OpenAI": (("Test OpenAI", "OpenAI"),),
    "Hugging Face": (("Test Hugging Face", "Hugging Face"),),
}
_ERROR_STYLE = "color: #b00020;"
_NOTE_STYLE = "color: palette(mid);"


class SettingField(QWidget):
    """One row's editor: the widget for its kind, a note (environment / help) and an error line."""

    def __init__(self, setting: Setting, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setting = setting
        self.env_name: str | None = None
        self._initial: Any = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(4)
        self.editor = self._make_editor(setting)
        self.editor.setObjectName(f"field_{setting.key}")
        row.addWidget(self.editor, 1)
        self.button: QToolButton | None = None
        if setting.kind is Kind.PATH:
            self.button = QToolButton()
            self.button.setText("Browse…")
            self.button.clicked.connect(self._browse)
        elif setting.kind is Kind.SECRET:
            self.button = QToolButton()
            self.button.setText("Show")
            self.button.setCheckable(True)
            self.button.toggled.connect(self._show_secret)
        if self.button is not None:
            self.button.setObjectName(f"button_{setting.key}")
            row.addWidget(self.button)
        layout.addLayout(row)
        self.note = QLabel(setting.help)
        self.note.setWordWrap(True)
        self.note.setStyleSheet(_NOTE_STYLE)
        self.note.setVisible(bool(setting.help))
        layout.addWidget(self.note)
        self.error = QLabel()
        self.error.setObjectName(f"error_{setting.key}")
        self.error.setWordWrap(True)
        self.error.setStyleSheet(_ERROR_STYLE)
        self.error.hide()
        layout.addWidget(self.error)
        if setting.help:
            self.editor.setToolTip(setting.help)

    def _make_editor(self, s: Setting) -> QWidget:
        if s.kind is Kind.BOOL:
            return QCheckBox()
        if s.kind is Kind.INT:
            box = QSpinBox()
            box.setRange(
                int(s.minimum if s.minimum is not None else -(2**31)),
                int(s.maximum if s.maximum is not None else 2**31 - 1),
            )
            if s.maximum is not None and s.maximum >= 10_000_000:
                box.setSingleStep(1_000_000)
                box.setGroupSeparatorShown(True)
            return box
        if s.kind is Kind.FLOAT:
            dbox = QDoubleSpinBox()
            dbox.setRange(s.minimum if s.minimum is not None else -1e12, s.maximum if s.maximum is not None else 1e12)
            return dbox
        if s.kind is Kind.CHOICE:
            combo = QComboBox()
            combo.setEditable(s.editable)
            titles = s.current_titles()
            for value in s.current_choices():
                combo.addItem(titles.get(value, value), value)
            return combo
        edit = QLineEdit()
        edit.setPlaceholderText(s.placeholder)
        if s.kind is Kind.SECRET:
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setPlaceholderText("not set")
        edit.textEdited.connect(lambda _text: self.set_error(None))
        return edit

    # -- value ----------------------------------------------------------------------------------
    def set_value(self, value: Any) -> None:
        e, s = self.editor, self.setting
        if isinstance(e, QCheckBox):
            e.setChecked(bool(value))
        elif isinstance(e, QSpinBox):
            e.setValue(int(value))
        elif isinstance(e, QDoubleSpinBox):
            e.setValue(float(value))
        elif isinstance(e, QComboBox):
            index = e.findData(value)
            if index < 0 and s.editable:
                e.addItem(str(value), str(value))
                index = e.count() - 1
            e.setCurrentIndex(max(0, index))
        elif isinstance(e, QLineEdit):
            e.setText("" if value is None else str(value))
        self._initial = self.value()

    def value(self) -> Any:
        e = self.editor
        if isinstance(e, QCheckBox):
            return e.isChecked()
        if isinstance(e, QSpinBox):
            return e.value()
        if isinstance(e, QDoubleSpinBox):
            return e.value()
        if isinstance(e, QComboBox):
            if e.isEditable() and e.currentText() != e.itemText(e.currentIndex()):
                return e.currentText().strip()
            data = e.currentData()
            return data if data is not None else e.currentText().strip()
        assert isinstance(e, QLineEdit)
        return e.text() if self.setting.secret else e.text().strip()

    @property
    def changed(self) -> bool:
        return self.value() != self._initial

    def set_environment(self, name: str, value: str | None) -> None:
        """Show that ``name`` sets this value: read-only, with the variable's name."""
        self.env_name = name
        if self.setting.secret:
            assert isinstance(self.editor, QLineEdit)
            self.editor.clear()
            self.editor.setPlaceholderText(f"from environment: {name}")
            if self.button is not None:
                self.button.setEnabled(False)
        elif value is not None:
            self.set_value(self.setting.parse(value))
        self.editor.setEnabled(False)
        if self.button is not None:
            self.button.setEnabled(False)
        text = f"From environment: {name} (used, not stored here; unset it to edit this)."
        self.note.setText(text + (f" {self.setting.help}" if self.setting.help else ""))
        self.note.setStyleSheet("font-style: italic;")  # readable: it explains the greyed-out field
        self.note.show()

    def set_error(self, sentence: str | None) -> None:
        self.error.setText(sentence or "")
        self.error.setVisible(bool(sentence))

    # -- buttons --------------------------------------------------------------------------------
    def _browse(self) -> None:
        assert isinstance(self.editor, QLineEdit)
        start = self.editor.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, self.setting.label, start)
        if folder:
            self.editor.setText(folder)

    def _show_secret(self, shown: bool) -> None:
        assert isinstance(self.editor, QLineEdit) and self.button is not None
        self.editor.setEchoMode(QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password)
        self.button.setText("Hide" if shown else "Show")


class SettingsDialog(QDialog):
    """Signals: ``saved(changed)`` with ``{key: value}`` of the non-secret settings Save changed."""

    saved = Signal(dict)
    check_finished = Signal(str)  # the CHECKS name, after its sentences are shown

    def __init__(
        self,
        *,
        settings: AppSettings,
        store: SecretStore,
        environ: Mapping[str, str] | None = None,
        open_models: Callable[[], None] | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setObjectName("settings_dialog")
        self.settings = settings
        self.store = store
        self._environ = environ
        self.fields: dict[str, SettingField] = {}
        self.test_buttons: dict[str, QPushButton] = {}
        self.test_results: dict[str, QLabel] = {}
        self._tasks: dict[str, BackgroundTask] = {}

        layout = QVBoxLayout(self)
        layout.addWidget(self._storage_box())
        self.tabs = QTabWidget()
        for group in GROUPS:
            self.tabs.addTab(self._group_page(group, open_models), group)
        layout.addWidget(self.tabs, 1)
        self.message = QLabel()
        self.message.setObjectName("settings_message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.message)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        self.import_button = QPushButton("Import .env…")
        self.import_button.setToolTip("Read the old project's .env (OpenAI key, AWS keys, region, role, bucket)")
        self.import_button.clicked.connect(self._ask_import)
        buttons.accepted.connect(self._save_clicked)
        buttons.rejected.connect(self.reject)
        self.save_button = buttons.button(QDialogButtonBox.StandardButton.Save)
        bottom = QHBoxLayout()
        bottom.addWidget(self.import_button)
        bottom.addStretch(1)
        bottom.addWidget(buttons)
        layout.addLayout(bottom)
        self.load()
        self.resize(680, 620)

    # -- building -------------------------------------------------------------------------------
    def _storage_box(self) -> QWidget:
        box = QWidget()
        box.setObjectName("secret_storage")
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        self.storage_label = QLabel()
        self.storage_label.setObjectName("secret_storage_status")
        self.storage_label.setWordWrap(True)
        v.addWidget(self.storage_label)
        row = QHBoxLayout()
        self.session_radio = QRadioButton("Keep secrets for this session only")
        self.file_radio = QRadioButton("Save secrets in a file only you can read (plain text)")
        group = QButtonGroup(box)
        group.addButton(self.session_radio)
        group.addButton(self.file_radio)
        for radio in (self.session_radio, self.file_radio):
            radio.toggled.connect(self._update_storage_text)
            row.addWidget(radio)
        row.addStretch(1)
        v.addLayout(row)
        no_keyring = not self.store.keyring_available
        self.session_radio.setVisible(no_keyring)
        self.file_radio.setVisible(no_keyring)
        self.file_radio.setChecked(self.store.backend_kind is StorageKind.FILE)
        self.session_radio.setChecked(self.store.backend_kind is not StorageKind.FILE)
        self._update_storage_text()
        return box

    def _group_page(self, group: str, open_models: Callable[[], None] | None) -> QWidget:
        page = QWidget()
        form = QFormLayout(page)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        for setting in settings_in(group):
            field = SettingField(setting)
            self.fields[setting.key] = field
            label = QLabel(setting.label + ":")
            label.setBuddy(field.editor)
            form.addRow(label, field)
        if group == "Models" and open_models is not None:
            button = QPushButton("Model files…")
            button.setToolTip("Download models or use a local file for one model (Inference → Models…)")
            button.clicked.connect(open_models)
            form.addRow("", button)
        tests = TESTS.get(group, ())
        if tests:
            row = QHBoxLayout()
            for text, name in tests:
                button = QPushButton(text)
                button.setObjectName(f"test_{name.lower().replace(' ', '_')}")
                button.clicked.connect(lambda _=False, n=name: self.run_check(n))
                self.test_buttons[name] = button
                row.addWidget(button)
            row.addStretch(1)
            form.addRow("", _wrap(row))
            result = QLabel()
            result.setObjectName(f"result_{group.lower().replace(' ', '_')}")
            result.setWordWrap(True)
            result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            result.setTextFormat(Qt.TextFormat.RichText)
            result.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            for _text, name in tests:
                self.test_results[name] = result
            form.addRow("", result)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(page)
        return scroll

    # -- values ---------------------------------------------------------------------------------
    def _env(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    def load(self) -> None:
        """Fill every field from the INI / secret store; mark environment overrides read-only."""
        env = self._env()
        for key, field in self.fields.items():
            s = field.setting
            field.set_error(None)
            from_env = s.env_value(env)
            if s.secret:
                try:
                    secret = self.store.get(key, environment=False)
                except SecretStoreError as exc:
                    secret = None
                    field.set_error(str(exc))
                field.set_value(secret.value if secret else "")
            else:
                field.set_value(self.settings.value(key))
            if from_env is not None:
                field.set_environment(from_env[0], from_env[1])

    def values(self) -> dict[str, Any]:
        """Every setting as the fields say (environment values where one is in force): what the
        Test buttons check. Contains secrets — never log it."""
        env = self._env()
        out: dict[str, Any] = {}
        for key, field in self.fields.items():
            from_env = field.setting.env_value(env) if field.env_name else None
            out[key] = from_env[1] if from_env is not None else field.value()
        return out

    def validate(self) -> bool:
        ok = True
        first_bad: SettingField | None = None
        for field in self.fields.values():
            problem = None if field.env_name else field.setting.validate(field.value())
            field.set_error(problem)
            if problem and first_bad is None:
                first_bad = field
            ok = ok and not problem
        if first_bad is not None:
            self.tabs.setCurrentIndex(GROUPS.index(first_bad.setting.group))
            first_bad.editor.setFocus()
        return ok

    def _apply_storage_choice(self) -> None:
        if self.store.keyring_available:
            return
        if self.file_radio.isChecked() and self.store.backend_kind is not StorageKind.FILE:
            self.store.use_file()
        elif self.session_radio.isChecked() and self.store.backend_kind is StorageKind.FILE:
            self.store.use_session()
        self._update_storage_text()

    def save(self) -> bool:
        """Validate, write the INI and the secret store; False (with the reasons shown) if not saved."""
        if not self.validate():
            self.message.setText("Nothing was saved: fix the marked fields.")
            return False
        changed: dict[str, Any] = {}
        try:
            self._apply_storage_choice()
            for key, field in self.fields.items():
                if field.env_name or not field.changed:
                    continue
                if field.setting.secret:
                    self.store.set(key, field.value())
                else:
                    self.settings.set_value(key, field.value())
                    changed[key] = field.setting.parse(field.value())
                field.set_value(field.value())  # the new baseline
        except SecretStoreError as exc:
            self.message.setText(redact(str(exc)))
            return False
        self.message.setText("Saved.")
        self.saved.emit(changed)
        return True

    def _save_clicked(self) -> None:
        if self.save():
            self.accept()

    def _update_storage_text(self) -> None:
        store = self.store
        if store.keyring_available:
            text = store.status()
        else:
            reason = store.keyring_problem or "no system keyring is available"
            reason = reason[0].upper() + reason[1:]
            if self.file_radio.isChecked():
                text = f"<b>{html.escape(reason)}.</b> {html.escape(store.file_warning())}"
            else:
                text = (
                    f"<b>{html.escape(reason)}.</b> Secrets are kept for this session only (they must be "
                    "entered again after a restart), unless you choose the file."
                )
        self.storage_label.setText(text)

    # -- .env import ----------------------------------------------------------------------------
    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import .env", str(Path.cwd()), ".env files (.env *.env);;All (*)")
        if path:
            self.import_dotenv(path)

    def import_dotenv(self, path: str | os.PathLike[str]) -> str:
        """Save the values of an old project's ``.env``: settings to the INI, secrets to the store;
        returns (and shows) what went where."""
        try:
            found = dotenv_import(path)
        except OSError as exc:
            text = f"{path} cannot be read: {exc.strerror or exc}."
            self.message.setText(text)
            return text
        lines: list[str] = []
        env = self._env()
        try:
            self._apply_storage_choice()
            for key, value in found.values.items():
                field = self.fields[key]
                name = found.sources[key]
                if field.setting.secret:
                    where = self.store.set(key, value)
                    place = {
                        SecretOrigin.KEYRING: "the system keyring",
                        SecretOrigin.SESSION: "this session only",
                        SecretOrigin.FILE: f"the secrets file {self.store.file_path}",
                    }[where]
                    lines.append(f"{name} → {field.setting.label} ({field.setting.group}), kept in {place}")
                else:
                    self.settings.set_value(key, value)
                    lines.append(f"{name} → {field.setting.label} ({field.setting.group}), saved in the settings")
                over = field.setting.env_value(env)
                if over is not None:
                    lines[-1] += f"; {over[0]} in the environment still takes precedence"
        except SecretStoreError as exc:
            lines.append(redact(str(exc)))
        for key, problem in found.invalid.items():
            lines.append(f"{found.sources.get(key) or key}: not imported — {problem}")
        if found.ignored:
            lines.append(f"Not settings of this app (ignored): {', '.join(found.ignored)}")
        head = (
            f"Imported {len(found.values)} value(s) from {path}:" if found.values else f"Nothing imported from {path}."
        )
        text = "\n".join([head, *(f"• {line}" for line in lines)])
        self.load()
        self.message.setText(text)
        return text

    # -- connection checks ----------------------------------------------------------------------
    def run_check(self, name: str) -> None:
        """Run ``CHECKS[name]`` with the values as typed, in a background thread."""
        task = self._tasks.get(name)
        if task is not None and task.running and not task.wait(1.0):
            return  # still checking (its button is disabled meanwhile)
        if task is None:
            task = BackgroundTask(self)
            task.finished.connect(lambda rows, n=name: self._show_check(n, rows))
            task.failed.connect(lambda msg, n=name: self._show_check(n, [CheckResult(n, False, redact(msg))]))
            task.ended.connect(lambda n=name: self.test_buttons[n].setEnabled(True))
            self._tasks[name] = task
        values, environ = self.values(), self._environ
        check = CHECKS[name]
        self.test_buttons[name].setEnabled(False)
        self.test_results[name].setText(f"<i>{html.escape(name)}: checking…</i>")

        task.start(lambda _report, _cancel: check(values, environ=environ), name=f"settings-check-{name}")

    def _show_check(self, name: str, rows: list[CheckResult]) -> None:
        lines = [f"<b>{html.escape(name)}</b>"]
        for row in rows:
            mark = "✔" if row.ok else "✘"
            colour = "#1b7f3b" if row.ok else "#b00020"
            lines.append(f"<span style='color:{colour}'>{mark}</span> {html.escape(redact(row.sentence))}")
        self.test_results[name].setText("<br>".join(lines))
        self.test_results[name].setProperty("rows", rows)
        self.check_finished.emit(name)

    def done(self, result: int) -> None:  # noqa: D401 (Qt name)
        for task in self._tasks.values():
            task.cancel()
        super().done(result)


def _wrap(layout: QHBoxLayout) -> QWidget:
    widget = QWidget()
    layout.setContentsMargins(0, 0, 0, 0)
    widget.setLayout(layout)
    return widget
