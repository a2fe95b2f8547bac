/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAbdominalPhantomAnatomy_h
#define itkAbdominalPhantomAnatomy_h

// Anatomy of the abdominal phantom (private header of the ITK layer): one subject's body, organs
// (shapes placed, deformed and scaled to reference volumes), bowel loops and per-organ HU for a
// phase, all drawn from the seed (../shared/phantom-reference.md gives the ranges).

#include "itkAbdominalPhantomGeometry.h"
#include "itkAbdominalPhantomImageSource.h"

namespace itk::phantom {

struct Anatomy
{
  double             bodyScale{ 1 };
  double             bodyHalfWidth{ 160 }, bodyHalfDepth{ 115 }, bodyCenterY{ 0 };
  double             fatThickness{ 15 }, muscleThickness{ 10 };
  double             spineY{ 55 };
  std::vector<Organ> organs; // painting order: later ones win
  std::vector<Tube>  bowel;
  double             bowelAirLevel{ 0 };
  double             stomachAirLevel{ 0 };
  double             hu[13]{};           // per-organ base HU for the chosen phase
  double             kidneyMedulla{ 0 }; // PV medulla HU
  double             stomachContent{ 10 };
  double             noiseSigma{ 15 };
};

// The subject of `seed` in `modality`: the same seed gives the same anatomy in both phases
// (only the intensities differ).
Anatomy
BuildAnatomy(uint64_t seed, AbdominalPhantomImageSource::ModalityEnum modality);

} // namespace itk::phantom

#endif
