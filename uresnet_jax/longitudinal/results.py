"""What comparing one subject's visits gives: each visit segmented, each follow-up against the
baseline (what `pipeline` computes and `outputs` and `report` write)."""
import dataclasses

import numpy as np

from uresnet_jax.data import nifti_io
from uresnet_jax.longitudinal import events, registration, visits


@dataclasses.dataclass(frozen=True)
class VisitResult:
  """One visit segmented on its own grid."""
  visit: visits.Visit
  flair: nifti_io.Volume
  brain: np.ndarray  # bool: the given brain mask, else the skull-stripped scan's non-zero voxels
  labels: np.ndarray  # uint8, post-processed as predict's (minimum lesion size, exclusion)
  lesions: events.VisitLesions
  volumes: dict  # <class>_ml, <class>_ml_low, <class>_ml_high, <class>_lesions, seconds


@dataclasses.dataclass(frozen=True)
class PairResult:
  """One follow-up against the baseline."""
  followup: str  # the follow-up visit's name
  rigid: registration.Rigid
  events: list[events.Event]  # new strokes first
  followup_map: np.ndarray  # uint8 change codes on the follow-up's own grid
  common_map: np.ndarray  # uint8 change codes of both visits' lesions on the baseline's grid
  followup_on_baseline: np.ndarray  # the follow-up FLAIR moved onto the baseline's grid (report)


@dataclasses.dataclass(frozen=True)
class SubjectResult:
  """One subject's visits and the comparison of each follow-up with the baseline."""
  subject: visits.Subject
  visits: list[VisitResult]  # the baseline first
  pairs: list[PairResult]  # one per follow-up
  seconds: float
