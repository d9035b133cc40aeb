"""A label map as a DICOM Segmentation (highdicom) of the series it was predicted on: one segment
per class, each frame referencing its source image, the source's patient and study carried over as
the standard requires, so that a DICOM viewer or PACS overlays it on the original images."""
import pathlib

import numpy as np

from uresnet_jax.common import atomic, labelling
from uresnet_jax.data import dicom_series

SERIES_NUMBER_OFFSET = 1000  # the SEG's series number: its source's plus this, as many tools do


def _segments():
  """One description per lesion class (WMH, stroke), coded from pydicom's concept dictionary."""
  import highdicom as hd
  from pydicom.sr.codedict import codes
  kinds = {"wmh": ("WMH", codes.DCM.WhiteMatterT2Hyperintensity),
           "stroke": ("Stroke", codes.SCT.CerebrovascularAccidentOrStroke)}
  algorithm = hd.AlgorithmIdentificationSequence(
      name="uresnet_jax uResNet", version=_version(), family=codes.cid7162.ArtificialIntelligence)
  return [hd.seg.SegmentDescription(
      segment_number=label, segment_label=kinds[name][0],
      segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
      segmented_property_type=kinds[name][1],
      algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
      algorithm_identification=algorithm) for name, label in labelling.CLASSES.items()]


def _version() -> str:
  from importlib import metadata
  return metadata.version("uresnet_jax")


def write_seg(path: pathlib.Path, labels: np.ndarray, study: dicom_series.Study,
              model_id: str) -> None:
  """Writes `labels` (on the grid dicom_series.read_volume gave for `study`) to `path` atomically
  as a binary DICOM-SEG, each frame in its source image's (or source frame's) order; `model_id`
  (the model's checksum) goes in as the device serial number."""
  import highdicom as hd
  from pydicom.uid import generate_uid
  sources, order = dicom_series.seg_sources(study)
  frames = np.zeros((len(order), *labels.shape[1::-1]), np.uint8)  # source frame, row, column
  frames[order] = np.asarray(labels, np.uint8).transpose(2, 1, 0)
  number = study.series.number
  seg = hd.seg.Segmentation(
      source_images=sources, pixel_array=frames,
      segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
      segment_descriptions=_segments(), series_instance_uid=generate_uid(),
      series_number=(int(number) if number.isdigit() else 0) + SERIES_NUMBER_OFFSET,
      sop_instance_uid=generate_uid(), instance_number=1, manufacturer="uresnet_jax",
      manufacturer_model_name="uResNet", software_versions=_version(),
      device_serial_number=model_id[:16] or "unknown", series_description="uresnet_jax WMH, stroke",
      content_label="URESNET", content_description="WMH and stroke, automatic",
      omit_empty_frames=bool(frames.any()))  # all frames, without a note, when none holds a lesion
  with atomic.replacing(path) as tmp:
    seg.save_as(tmp)
