"""Records of processing and impact assessments, built from piiguard's own registers."""

from piiguard.records.processing import RECORD_FORMAT, Assessment, Records, requirements

__all__ = ["RECORD_FORMAT", "Assessment", "Records", "requirements"]
