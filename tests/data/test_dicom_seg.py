"""The DICOM-SEG of a label map: one segment per class, every frame on the source image it names,
equal to the labels of that slice, with the source's patient and study."""
import numpy as np
import pydicom
import pytest

from dicom_writer import PATIENT, phantom_volume, write_enhanced, write_series
from uresnet_jax.data import dicom_seg, dicom_series


def _labels(shape):
  labels = np.zeros(shape, np.uint8)
  labels[3:9, 4:7, 1] = 1
  labels[20:24, 10:30, 4] = 2
  labels[5, 5, 4] = 1
  return labels


def check_seg(seg_path, labels, study):
  """Asserts the SEG at `seg_path` holds `labels` (on read_volume's grid of `study`) frame by
  frame on the right source image or frame, at that slice's position; returns the SEG."""
  import highdicom as hd
  seg = hd.seg.segread(seg_path)
  sources, order = dicom_series.seg_sources(study)
  affine = dicom_series.LPS_TO_RAS @ dicom_series.read_volume(study).affine  # to LPS
  if study.series.multiframe:
    slice_of = {(str(sources[0].SOPInstanceUID), int(i) + 1): k for k, i in enumerate(order)}
  else:
    slice_of = {(str(sources[i].SOPInstanceUID), 1): k for k, i in enumerate(order)}
  assert [d.SegmentLabel for d in seg.SegmentSequence] == ["WMH", "Stroke"]
  assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == study.series.uid
  assert {str(r.ReferencedSOPInstanceUID) for r in
          seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence} == {u for u, _ in slice_of}
  frames = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
  seen = np.zeros(labels.shape, np.uint8)
  for frame, group in zip(frames, seg.PerFrameFunctionalGroupsSequence):
    source = group.DerivationImageSequence[0].SourceImageSequence[0]
    frame_number = int(source.get("ReferencedFrameNumber", 1))
    k = slice_of[(str(source.ReferencedSOPInstanceUID), frame_number)]
    segment = group.SegmentIdentificationSequence[0].ReferencedSegmentNumber
    np.testing.assert_allclose(group.PlanePositionSequence[0].ImagePositionPatient,
                               (affine @ [0, 0, k, 1])[:3], atol=0.01)
    seen[:, :, k][frame.T > 0] = segment
  np.testing.assert_array_equal(seen, labels)
  return seg


@pytest.mark.parametrize("order", [range(6), [5, 4, 3, 2, 1, 0], [3, 0, 5, 1, 4, 2]])
def test_every_frame_lands_on_its_source_slice_and_equals_the_labels(tmp_path, order):
  affine = np.diag([-0.9, -0.9, 4.0, 1.0])
  write_series(tmp_path / "s", phantom_volume(), affine, order=list(order))
  (study,) = dicom_series.find_studies(tmp_path / "s")
  volume = dicom_series.read_volume(study)
  labels = _labels(volume.data.shape)
  dicom_seg.write_seg(tmp_path / "x_seg.dcm", labels, study, "0123456789abcdef0123")
  seg = check_seg(tmp_path / "x_seg.dcm", labels, study)
  for key, value in PATIENT.items():  # the source's patient module, as the standard requires
    assert str(seg.get(key)) == value
  source = pydicom.dcmread(study.series.files[0])
  assert seg.StudyInstanceUID == source.StudyInstanceUID and seg.Modality == "SEG"
  assert seg.SeriesNumber == 1003 and seg.DeviceSerialNumber == "0123456789abcdef"
  assert not list(tmp_path.glob(".tmp-*"))


def test_a_seg_of_an_enhanced_multi_frame_source_references_its_frames(tmp_path):
  write_enhanced(tmp_path / "s" / "EMR", phantom_volume(), np.diag([-0.9, -0.9, 4.0, 1.0]),
                 order=[3, 0, 5, 1, 4, 2])
  (study,) = dicom_series.find_studies(tmp_path / "s")
  labels = _labels(dicom_series.read_volume(study).data.shape)
  dicom_seg.write_seg(tmp_path / "x_seg.dcm", labels, study, "m")
  check_seg(tmp_path / "x_seg.dcm", labels, study)


def test_labels_without_a_lesion_give_a_seg_of_empty_frames(tmp_path):
  write_series(tmp_path / "s", phantom_volume(), np.diag([0.9, 0.9, 4.0, 1.0]))
  (study,) = dicom_series.find_studies(tmp_path / "s")
  labels = np.zeros((32, 32, 6), np.uint8)
  dicom_seg.write_seg(tmp_path / "x_seg.dcm", labels, study, "m")
  check_seg(tmp_path / "x_seg.dcm", labels, study)
