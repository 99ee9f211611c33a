"""File → Import… through the real window: the project's files hold the merged objects and the
object list of the image on screen shows them."""

from __future__ import annotations

import numpy as np

from desktop_app.core.annotation.document import AnnotationObject, ImageDocument
from desktop_app.core.annotation.project import ProjectFolder
from desktop_app.core.formats.coco import export_coco
from fixtures_app import wait_image


def test_file_import_merges_and_refreshes_the_window(qtbot, make_window, synthetic_folder, tmp_path):
    folder, truth = synthetic_folder.folder, synthetic_folder.truth
    project = ProjectFolder(folder)
    mine = project.load("img1.png")
    mine.add(AnnotationObject(label="red", mask=truth["img1.png"]["red"]))
    project.save(mine)
    docs = []
    for name, objects in truth.items():
        doc = ImageDocument(image_name=name, width=200, height=150)
        for label, mask in objects.items():
            doc.add(AnnotationObject(label=label, mask=mask))
        docs.append(doc)
    (source,) = export_coco(docs, images_dir=folder, out_dir=tmp_path / "coco")

    window = make_window([str(folder)])
    wait_image(qtbot, window, "img1.png")
    action = window.actions_by_name["import_annotations"]
    assert action.property("group") == "File"
    action.trigger()
    dialog = window._dialogs["import"]
    dialog.set_format("coco")
    dialog.source.setText(str(source))
    with qtbot.waitSignal(dialog.imported, timeout=30_000) as blocker:
        dialog.import_button.click()
    summary = blocker.args[0]
    assert (summary.objects_added, summary.duplicates_skipped) == (3, 1)  # "red" on img1 was there
    assert "added 3 object(s) to 3 image(s); 1 already present" in dialog.log.toPlainText()

    on_disk = ProjectFolder(folder).load("img1.png")
    assert [o.label for o in on_disk.objects] == ["red", "blue"]
    assert np.array_equal(on_disk.objects[1].mask, truth["img1.png"]["blue"])
    assert [o.label for o in ProjectFolder(folder).load("img10.png").objects] == ["yellow"]
    qtbot.waitUntil(lambda: [o.label for o in window.controller.document.objects] == ["red", "blue"], timeout=10_000)
    assert window.object_list.count() == 2 if hasattr(window.object_list, "count") else True
    assert {"blue", "green", "yellow"} <= set(window.label_editor.labels.names)
    dialog.close()
