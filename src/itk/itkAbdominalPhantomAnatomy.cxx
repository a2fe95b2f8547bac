/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAbdominalPhantomAnatomy.h"

namespace itk::phantom {
namespace {

// Per-organ HU ranges (phantom-reference.md): {NC low, NC high, PV low, PV high}.
struct HURange
{
  double ncLow, ncHigh, pvLow, pvHigh;
};
const HURange kOrganHU[13] = {
  { 0, 0, 0, 0 },       // background (unused)
  { 40, 50, 110, 130 }, // 1 spleen
  { 25, 35, 150, 200 }, // 2 right kidney (PV: cortex brighter than medulla)
  { 25, 35, 150, 200 }, // 3 left kidney
  { 0, 20, 0, 20 },     // 4 gallbladder (bile does not enhance)
  { 30, 45, 60, 90 },   // 5 esophagus
  { 50, 65, 100, 130 }, // 6 liver
  { 30, 45, 60, 100 },  // 7 stomach wall (contents: water 0-15 or air)
  { 35, 50, 130, 180 }, // 8 aorta
  { 35, 50, 110, 150 }, // 9 IVC
  { 35, 50, 150, 200 }, // 10 portal & splenic veins
  { 35, 45, 90, 120 },  // 11 pancreas
  { 10, 30, 40, 70 },   // 12 right adrenal
};

// Target volumes (mL): the middle half of the reference ranges.
const double kTargetVolume[13][2] = {
  { 0, 0 },     { 175, 225 }, { 132, 158 }, { 132, 158 }, { 35, 45 }, { 0, 0 },     { 1350, 1650 },
  { 280, 420 }, { 0, 0 },     { 0, 0 },     { 0, 0 },     { 75, 85 }, { 4.5, 5.5 },
};

Organ
MakeOrgan(unsigned char label, Random & rng, const Vec3 & center, const Vec3 & euler, double jitter, double deformation)
{
  Organ o;
  o.label = label;
  o.center = center + Vec3{ rng.Uniform(-jitter, jitter), rng.Uniform(-jitter, jitter), rng.Uniform(-jitter, jitter) };
  const double tilt = 10.0 * M_PI / 180.0;
  o.rotation = Rot::Euler(euler.x + rng.Uniform(-tilt, tilt) * 0.5,
                          euler.y + rng.Uniform(-tilt, tilt) * 0.5,
                          euler.z + rng.Uniform(-tilt, tilt));
  o.deformation = RandomDeformation(rng, deformation);
  return o;
}

// Scales an organ so that the volume it will have in the label map (inside the body, minus what
// the organs painted after it take) hits `target` mL.
template <typename TInBody>
void
Calibrate(Organ & organ, double target, bool tubeOnly, const std::vector<const Organ *> & winners, TInBody inBody)
{
  for (int iteration = 0; iteration < 3; ++iteration)
  {
    organ.UpdateBounds();
    const double volume = organ.Volume(organ.label == 12 ? 0.5 : 2.0, winners, inBody);
    if (volume <= 0)
      return;
    const double ratio = target / volume;
    organ.scale *= tubeOnly ? std::sqrt(ratio) : std::cbrt(ratio);
  }
  organ.UpdateBounds();
}

} // namespace

Anatomy
BuildAnatomy(uint64_t seed, AbdominalPhantomImageSource::ModalityEnum modality)
{
  Random       rng(Mix(seed, 1));
  Anatomy      a;
  const double b = rng.Uniform(0.88, 1.02); // body size
  a.bodyScale = b;
  a.bodyHalfWidth = 160 * b;
  a.bodyHalfDepth = 115 * b;
  a.bodyCenterY = 0;
  a.fatThickness = rng.Uniform(10, 25);
  a.muscleThickness = rng.Uniform(8, 12);
  a.spineY = 0.50 * a.bodyHalfDepth;
  const double sy = a.spineY;
  auto         P = [b](double x, double y, double z) { return Vec3{ x * b, y * b, z }; };
  const double deg = M_PI / 180.0;

  // 6 liver: right lobe, posterior-inferior extension towards the right kidney, left lobe.
  Organ liver = MakeOrgan(6, rng, P(-62, 0, 178), { 0, 0, -15 * deg }, 6, 5);
  liver.blobs = { { { 0, 0, 0 }, { 78, 72, 62 } },
                  { { -8, 30, -52 }, { 45, 38, 38 } },
                  { { 62, -30, 12 }, { 55, 30, 38 } } };
  // 7 stomach: fundus, body, antrum curving to the right.
  Organ stomach = MakeOrgan(7, rng, P(55, -25, 168), { 0, 0, 0 }, 6, 5);
  stomach.blobs = { { { 5, 18, 30 }, { 38, 32, 32 } },
                    { { -5, -15, -8 }, { 40, 28, 40 } },
                    { { -42, -25, -40 }, { 32, 22, 22 } } };
  // 1 spleen: crescent against the left posterior ribs.
  Organ spleen = MakeOrgan(1, rng, P(98, 42, 172), { 0, 0, 35 * deg }, 5, 4);
  spleen.blobs = { { { 0, 0, 0 }, { 22, 50, 46 } }, { { -10, 22, -18 }, { 18, 32, 30 } } };
  // 2 right kidney (1-2 cm lower) and 3 left kidney: bean with a medial hilum.
  const double rkDrop = rng.Uniform(12, 20);
  Organ        rightKidney = MakeOrgan(2, rng, P(-72, 48, 112 - rkDrop), { 0, -12 * deg, -20 * deg }, 4, 3);
  rightKidney.blobs = { { { 0, 0, 0 }, { 26, 24, 52 } }, { { 22, 0, 0 }, { 12, 10, 16 }, true } };
  Organ leftKidney = MakeOrgan(3, rng, P(72, 48, 117), { 0, 12 * deg, 20 * deg }, 4, 3);
  leftKidney.blobs = { { { 0, 0, 0 }, { 26, 24, 52 } }, { { -22, 0, 0 }, { 12, 10, 16 }, true } };
  // 4 gallbladder: pear under the liver's inferior surface, anterior, right of midline.
  Organ gallbladder = MakeOrgan(4, rng, P(-48, -42, 128), { 25 * deg, 0, 0 }, 4, 2);
  gallbladder.blobs = { { { 0, 0, -8 }, { 16, 15, 26 } }, { { 0, 0, 16 }, { 10, 9, 16 } } };
  // 11 pancreas: head by the IVC (right), body across the midline at L1-L2, tail to the splenic hilum.
  Organ                   pancreas = MakeOrgan(11, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 3);
  const Vec3              panOffset{ rng.Uniform(-5, 5), rng.Uniform(-4, 4), rng.Uniform(-6, 6) };
  const std::vector<Vec3> panControl = {
    P(-42, -2, 92) + panOffset, P(-8, -14, 100) + panOffset, P(35, -6, 110) + panOffset, P(78, 22, 128) + panOffset
  };
  pancreas.tubes = { CurvedTube(panControl, { 17, 13, 11, 9 }, 0.75) };
  // 12 right adrenal: inverted V above the right kidney, behind the IVC, medial to the liver.
  Organ adrenal = MakeOrgan(12, rng, P(-34, 38, 152 - rkDrop * 0.5), { 0, 0, -30 * deg }, 3, 1);
  // Two thin limbs (about 5 mm thick) joined at the top, spreading downwards: an inverted V.
  adrenal.blobs = { { { -6, 0, -6 }, { 2.6, 10, 15 }, false, Rot::Euler(0, 22 * deg, 0) },
                    { { 6, 0, -6 }, { 2.6, 10, 15 }, false, Rot::Euler(0, -22 * deg, 0) } };
  adrenal.smoothness = 0.3;
  // 5 esophagus: left-anterior of the spine, joins the stomach at ~T11.
  const Vec3   stomachTop = stomach.center + Vec3{ -5 * b, 10 * b, 28 };
  Organ        esophagus = MakeOrgan(5, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double er = rng.Uniform(10.0, 11.5);
  // In front of the aorta (not on it), then forwards and to the left into the stomach.
  esophagus.tubes = { CurvedTube(
    { P(2, sy - 56, 262), P(6, sy - 58, 228), P(16, sy - 64, 198), stomachTop }, { er, er, er, er * 1.1 }, 0.9) };
  // 8 aorta: left-anterior of the vertebral bodies through the whole volume.
  Organ        aorta = MakeOrgan(8, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double ar = rng.Uniform(10.5, 12.0);
  aorta.tubes = { CurvedTube(
    { P(14, sy - 30, -10), P(18, sy - 32, 80), P(16, sy - 30, 170), P(12, sy - 26, 262) }, { ar, ar, ar, ar }, 1.0) };
  // 9 IVC: right-anterior of the spine, oval, into the liver's groove at the top.
  Organ        ivc = MakeOrgan(9, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double vr = rng.Uniform(13.5, 15.0);
  ivc.tubes = { CurvedTube({ P(-22, sy - 28, -10), P(-24, sy - 30, 90), P(-28, sy - 36, 170), P(-26, sy - 40, 262) },
                           { vr, vr, vr, vr * 0.95 },
                           0.72) };
  // 10 portal vein (confluence behind the pancreas neck to the liver hilum) and splenic vein
  //    (along the back of the pancreas to the splenic hilum).
  Organ        veins = MakeOrgan(10, rng, { 0, 0, 0 }, { 0, 0, 0 }, 0, 1);
  const double pr = rng.Uniform(6.0, 7.0);
  const Vec3   confluence = P(-8, -14, 100) + panOffset + Vec3{ 0, 17 * b, 6 };
  veins.tubes = {
    CurvedTube({ confluence, confluence + Vec3{ -14 * b, -6 * b, 22 }, P(-44, -6, 150) }, { pr, pr, pr * 0.9 }, 1.0),
    CurvedTube({ confluence,
                 P(35, 9, 112) + panOffset,
                 P(76, 36, 132) + panOffset,
                 spleen.center + Vec3{ -18 * b, -6 * b, -10 } },
               { pr * 0.9, pr * 0.85, pr * 0.8, pr * 0.8 },
               1.0),
  };

  // Sizes from the reference ranges, calibrated from the last-painted organ backwards so that each
  // organ's label-map volume accounts for the organs that overwrite it.
  double targets[13];
  for (unsigned char label : { 6, 7, 1, 2, 3, 4, 11, 12 })
    targets[label] = rng.Uniform(kTargetVolume[label][0], kTargetVolume[label][1]);
  const double ax = a.bodyHalfWidth, ay = a.bodyHalfDepth;
  auto         inBody = [ax, ay](const Vec3 & p) {
    const double wx = ax * (1.0 + 0.04 * (125 - p.z) / 125);
    return (p.x / wx) * (p.x / wx) + (p.y / ay) * (p.y / ay) < 1.0;
  };
  for (Organ * o : { &esophagus, &aorta, &ivc, &veins })
    o->UpdateBounds();
  std::vector<Organ *> order = { &liver,    &stomach, &spleen,    &rightKidney, &leftKidney, &gallbladder,
                                 &pancreas, &adrenal, &esophagus, &veins,       &ivc,        &aorta };
  for (int index = static_cast<int>(order.size()) - 1; index >= 0; --index)
  {
    Organ * organ = order[index];
    if (organ->label == 5 || organ->label >= 8 && organ->label <= 10)
      continue; // tubes keep their drawn radii
    std::vector<const Organ *> winners(order.begin() + index + 1, order.end());
    Calibrate(*organ, targets[organ->label], organ->label == 11, winners, inBody);
  }

  a.organs = { liver,    stomach, spleen,    rightKidney, leftKidney, gallbladder,
               pancreas, adrenal, esophagus, veins,       ivc,        aorta };

  // Bowel loops in the lower anterior abdomen (unlabelled, as in BTCV).
  for (int loop = 0; loop < 5; ++loop)
  {
    const double      x0 = rng.Uniform(-90, 90) * b, z0 = rng.Uniform(10, 80), y0 = rng.Uniform(-70, -10) * b;
    std::vector<Vec3> control;
    for (int c = 0; c < 4; ++c)
      control.push_back({ x0 + rng.Uniform(-40, 40) * b, y0 + rng.Uniform(-15, 15) * b, z0 + rng.Uniform(-25, 25) });
    const double r = rng.Uniform(10, 15);
    a.bowel.push_back(CurvedTube(control, { r, r, r, r }, 1.0));
  }
  a.bowelAirLevel = rng.Uniform(0.3, 0.6);
  a.stomachAirLevel = rng.Uniform(0.55, 0.8);

  // Intensities for the phase: each organ's mean drawn inside the middle of its range.
  const bool pv = modality == AbdominalPhantomImageSource::ModalityEnum::PortalVenous;
  for (int label = 1; label <= 12; ++label)
  {
    const HURange & r = kOrganHU[label];
    const double    lo = pv ? r.pvLow : r.ncLow, hi = pv ? r.pvHigh : r.ncHigh;
    a.hu[label] = rng.Uniform(lo + 0.25 * (hi - lo), hi - 0.25 * (hi - lo));
  }
  // Kidneys in PV: cortex brighter than medulla, mean inside 150-200.
  a.kidneyMedulla = pv ? rng.Uniform(150, 162) : 0;
  a.stomachContent = rng.Uniform(3, 12);
  Random noise(Mix(seed, 2)); // the noise level is a property of the subject's scan
  a.noiseSigma = noise.Uniform(11.0, 18.0);
  return a;
}

} // namespace itk::phantom
