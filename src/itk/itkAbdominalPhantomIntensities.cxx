/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAbdominalPhantomRendering.h"

#include "itkSmoothingRecursiveGaussianImageFilter.h"

namespace itk::phantom {

void
RenderIntensities(const Anatomy &                    a,
                  const Grid &                       grid,
                  bool                               pv,
                  MultiThreaderBase *                threader,
                  const std::vector<unsigned char> & tissue,
                  const unsigned char *              label,
                  const std::vector<float> &         organValue,
                  float *                            h)
{
  const int64_t nx = grid.nx, ny = grid.ny, nz = grid.nz;
  const double  muscleHU = pv ? 62 : 50;
  threader->ParallelizeArray(
    0,
    nz,
    [&](SizeValueType k) {
      const double z = grid.Z(k);
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i)
        {
          const size_t v = static_cast<size_t>((k * ny + j) * nx + i);
          double       value = -1000;
          const int    l = label[v];
          if (l != 0)
          {
            value = a.hu[l];
            const double inside = -organValue[v]; // 0 at the surface, ~1 at the centre
            if (l == 2 || l == 3)
            {
              // PV: bright cortex (outer shell), darker medulla; NC: uniform.
              if (pv)
                value = inside < 0.22 ? 2 * a.hu[l] - a.kidneyMedulla : a.kidneyMedulla;
            }
            else if (l == 7)
            {
              // Stomach: enhancing wall, then water contents with an air cap anteriorly.
              if (inside > 0.14)
              {
                const Organ & st = a.organs[1];
                const double  yTop = st.lower.y + (st.upper.y - st.lower.y) * (1.0 - a.stomachAirLevel) * 0.6;
                value = grid.Y(j) < yTop ? -1000 : a.stomachContent;
              }
            }
            // Gentle low-frequency texture, +-3 HU.
            value += 3.0 * std::sin(0.05 * grid.X(i) + 0.7 * l) * std::cos(0.04 * grid.Y(j) - 0.3 * l) *
                     std::sin(0.03 * z + l);
          }
          else
          {
            switch (tissue[v])
            {
              case Air:
                value = -1000;
                break;
              case SubcutaneousFat:
              case VisceralFat:
                value = -100;
                break;
              case Muscle:
              case BowelWall:
                value = muscleHU;
                break;
              case Cancellous:
                value = 250;
                break;
              case Cortical:
                value = 1000;
                break;
              case Disc:
                value = 80;
                break;
              case BowelWater:
                value = 10;
                break;
              case BowelAir:
                value = -1000;
                break;
              default:
                break;
            }
          }
          h[v] = static_cast<float>(value);
        }
    },
    nullptr);
}

void
BlurAndAddNoise(const Anatomy &     a,
                const Grid &        grid,
                uint64_t            seed,
                uint64_t            modality,
                MultiThreaderBase * threader,
                Image<float, 3> *   hu,
                short *             out)
{
  using FloatImage = Image<float, 3>;
  const int64_t nx = grid.nx, ny = grid.ny, nz = grid.nz;
  const auto &  spacing = grid.spacing;
  // Partial-volume blur (about half a voxel).
  auto blur = SmoothingRecursiveGaussianImageFilter<FloatImage, FloatImage>::New();
  blur->SetInput(hu);
  SmoothingRecursiveGaussianImageFilter<FloatImage, FloatImage>::SigmaArrayType sigma;
  for (unsigned int d = 0; d < 3; ++d)
    sigma[d] = 0.45 * spacing[d];
  blur->SetSigmaArray(sigma);
  blur->SetNumberOfWorkUnits(1); // deterministic
  blur->Update();
  const float * blurred = blur->GetOutput()->GetBufferPointer();
  // One stream per slice, seeded from (seed, modality, slice): deterministic whatever the threads.
  threader->ParallelizeArray(
    0,
    nz,
    [&](SizeValueType k) {
      Random noise(Mix(Mix(seed, 100 + modality), k));
      for (int64_t j = 0; j < ny; ++j)
        for (int64_t i = 0; i < nx; ++i)
        {
          const size_t v = static_cast<size_t>((k * ny + j) * nx + i);
          double       value = blurred[v];
          if (value > -990) // scanner noise inside the body; air outside stays flat
            value += a.noiseSigma * noise.Normal();
          out[v] = static_cast<short>(std::clamp(std::lround(value), -1024L, 3071L));
        }
    },
    nullptr);
}

} // namespace itk::phantom
