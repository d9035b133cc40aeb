"""One scan's work in `predict`: its label map on its own grid, volumes, lesions, QC images and the
files it writes, into a folder the caller gives (a staging folder the output folder commits)."""
import dataclasses
import pathlib
import time

import numpy as np

from uresnet_jax.common import labelling
from uresnet_jax.data import dicom_seg, dicom_series, nifti_io, preprocess, scan_inputs
from uresnet_jax.evaluation import html_report, prediction_report
from uresnet_jax.inference import lesions, predictor, run_settings


@dataclasses.dataclass(frozen=True)
class ScanResult:
  """One scan's rows and files: what the output folder records for it (scans/<scan>.json)."""
  volumes: dict
  lesions: list[dict]
  files: list[str]  # written, relative to the output folder
  review: dict  # what report.html shows: slice images, lesion -> slice, warnings


def _exclusion(record: nifti_io.SubjectRecord, reference: nifti_io.Volume) -> np.ndarray | None:
  if record.exclusion is None:
    return None
  volume = nifti_io.load_nifti(record.exclusion, kind="image", subject=record.subject)
  nifti_io.check_same_grid(reference, volume, record.subject)
  return volume.data > 0


def _icv(record: nifti_io.SubjectRecord, volumes: nifti_io.SubjectVolumes,
         prepared: preprocess.Prepared) -> tuple[float, str]:
  """ICV (mL) and where it came from: the manifest's icv_ml, the given brain mask, or the mask
  derived from the skull-stripped scan."""
  icv_ml = labelling.manifest_icv_ml(record.clinical.get("icv_ml", ""))
  if icv_ml is not None:
    return icv_ml, "manifest"
  if volumes.brain_mask is not None:
    mask = volumes.brain_mask
    return float(mask.data.sum()) * labelling.voxel_volume_ml(mask.affine), "brain_mask"
  grid_ml = labelling.voxel_volume_ml(prepared.geometry.grid_affine)
  return float(prepared.mask.sum()) * grid_ml, "skull-stripped scan"


def segment_scan(model: predictor.Predictor, scan: scan_inputs.Scan, out: pathlib.Path,
                 settings: run_settings.RunSettings) -> ScanResult:
  """Predicts one scan and writes its files into `out` (QC images in out/qc); returns its rows."""
  start = time.perf_counter()
  options = settings.options
  record = scan.record
  given = {"flair": dicom_series.read_volume(scan.dicom)} if scan.dicom else None
  volumes = nifti_io.load_subject(record, model.info.channels, given)
  reference = next(iter(volumes.channels.values()))
  exclusion = _exclusion(record, reference)
  prepared = model.prepare(volumes, require_stripped=True)
  prediction = model.predict(prepared)
  voxel_ml = labelling.voxel_volume_ml(reference.affine)
  min_voxels = options.min_lesion_mm3 / 1000.0 / voxel_ml
  labels = lesions.postprocess(prediction.labels, exclusion, min_voxels)
  zones = np.zeros(labels.shape, np.uint8)  # the distance maps are only needed for lesions
  candidates = prediction.stroke_candidates & (labels == 0)
  if exclusion is not None:
    candidates &= ~exclusion
  if labels.any() or candidates.any():
    zones = preprocess.to_native(lesions.location_zones(
        prepared.image, prepared.mask, prepared.geometry.grid_zooms, options), prepared.geometry)
  lesion_rows = lesions.lesion_rows(scan.name, labels, prediction.probabilities, zones,
                                    reference.affine, options.ambiguity_margin, candidates)
  icv_ml, icv_source = _icv(record, volumes, prepared)
  row = {"subject": scan.name}
  for name, label in labelling.CLASSES.items():
    low, high = lesions.volume_interval(prediction.probabilities, labels, label, exclusion,
                                        min_voxels, options.interval_low_p, options.interval_high_p)
    ml = float((labels == label).sum() * voxel_ml)
    row.update({f"{name}_ml": ml, f"{name}_ml_low": low * voxel_ml, f"{name}_ml_high": high * voxel_ml,
                f"{name}_lesions": sum(r["class"] == name for r in lesion_rows),
                f"{name}_pct_icv": labelling.percent_of_icv(ml, icv_ml)})
  row.update(lesions.by_location(lesion_rows))
  row.update(icv_ml=icv_ml, icv_source=icv_source,
             excluded_ml=float(exclusion.sum() * voxel_ml) if exclusion is not None else 0.0,
             input=str(record.flair))

  if settings.bids:
    folder = out.joinpath(*scan.bids_path[:-1]) if scan.bids_path else out / f"sub-{scan.name}"
    stem = scan.bids_path[-1] if scan.bids_path else f"sub-{scan.name}"
    folder.mkdir(parents=True, exist_ok=True)
    label_file = folder / f"{stem}_desc-uresnet_dseg.nii.gz"
    prob_file = folder / f"{stem}_desc-uresnet_probseg.nii.gz"
  else:
    label_file = out / f"{scan.name}_labels.nii.gz"
    prob_file = out / f"{scan.name}_probabilities.nii.gz"
  files = [label_file]
  nifti_io.save_nifti(label_file, labels, reference.affine, like=reference)
  if scan.dicom:  # a DICOM-SEG too, which a viewer overlays on the source series
    files.append(label_file.parent / f"{scan.name}_seg.dcm")
    dicom_seg.write_seg(files[-1], labels, scan.dicom, settings.checksum)
  if settings.probabilities:
    nifti_io.save_nifti(prob_file, prediction.probabilities.astype(np.float32), reference.affine,
                        like=reference)
    files.append(prob_file)
  qc_dir = out / "qc"
  qc_dir.mkdir(parents=True, exist_ok=True)
  qc_file = qc_dir / f"{scan.name}.png"
  canonical_image, canonical_affine = preprocess.to_canonical(reference.data, reference.affine)
  canonical_labels = preprocess.to_canonical(labels, reference.affine)[0]
  canonical_brain = preprocess.to_canonical(
      volumes.brain_mask.data if volumes.brain_mask is not None else reference.data > 0,
      reference.affine)[0]
  prediction_report.qc_image(qc_file, f"{scan.name}: WMH {row['wmh_ml']:.1f} mL, stroke "
                             f"{row['stroke_ml']:.1f} mL", canonical_image, canonical_labels,
                             canonical_brain, options.qc_slices)
  files.append(qc_file)
  slices = html_report.slice_images(qc_dir / scan.name, canonical_image, canonical_labels,
                                    canonical_brain, options.qc_slices)
  files += [qc_dir / scan.name / s[k] for s in slices for k in ("image", "overlay")]
  review = {"slices": [{**s, **{k: f"qc/{scan.name}/{s[k]}" for k in ("image", "overlay")}}
                       for s in slices],
            "lesion_slices": html_report.lesion_slices(lesion_rows, canonical_affine),
            "warnings": html_report.scan_warnings(canonical_brain, canonical_affine,
                                                  row["excluded_ml"])}
  row["seconds"] = time.perf_counter() - start
  return ScanResult(row, lesion_rows, [str(f.relative_to(out)) for f in files], review)
