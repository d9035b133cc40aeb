"""Change between visits of one subject: rigid registration, lesion matching, per-lesion events."""
