/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#include "itkAbdominalPhantomImageSource.h"

#include "itkAbdominalPhantomRendering.h"

#include <algorithm>
#include <cmath>

namespace itk {

using namespace phantom;

// ---------------------------------------------------------------------------------------------

const std::vector<AbdominalPhantomImageSource::OrganDescription> &
AbdominalPhantomImageSource::GetOrgans()
{
  static const std::vector<OrganDescription> organs = {
    { 1, "spleen", { 157, 108, 162 } },           { 2, "right_kidney", { 185, 102, 83 } },
    { 3, "left_kidney", { 255, 187, 118 } },      { 4, "gallbladder", { 139, 150, 98 } },
    { 5, "esophagus", { 211, 171, 143 } },        { 6, "liver", { 221, 130, 101 } },
    { 7, "stomach", { 216, 101, 79 } },           { 8, "aorta", { 255, 50, 50 } },
    { 9, "inferior_vena_cava", { 0, 151, 206 } }, { 10, "portal_and_splenic_veins", { 0, 112, 165 } },
    { 11, "pancreas", { 249, 180, 111 } },        { 12, "right_adrenal_gland", { 244, 214, 49 } },
  };
  return organs;
}

std::string
AbdominalPhantomImageSource::GetModalityName(ModalityEnum modality)
{
  return modality == ModalityEnum::PortalVenous ? "contrast" : "noncontrast";
}

AbdominalPhantomImageSource::ModalityEnum
AbdominalPhantomImageSource::ParseModality(const std::string & text)
{
  if (text == "contrast")
    return ModalityEnum::PortalVenous;
  if (text == "noncontrast")
    return ModalityEnum::NonContrast;
  itkGenericExceptionMacro(<< "modality '" << text << "': expected 'contrast' or 'noncontrast'");
}

std::ostream &
operator<<(std::ostream & os, AbdominalPhantomImageSource::ModalityEnum modality)
{
  return os << AbdominalPhantomImageSource::GetModalityName(modality);
}

AbdominalPhantomImageSource::AbdominalPhantomImageSource()
{
  m_Size[0] = 512;
  m_Size[1] = 512;
  m_Size[2] = 100;
  m_FieldOfView[0] = 350.0;
  m_FieldOfView[1] = 350.0;
  m_FieldOfView[2] = 250.0;
  this->SetNumberOfRequiredOutputs(2);
  this->SetNthOutput(0, this->MakeOutput(0));
  this->SetNthOutput(1, this->MakeOutput(1));
}

ProcessObject::DataObjectPointer
AbdominalPhantomImageSource::MakeOutput(DataObjectPointerArraySizeType index)
{
  if (index == 1)
  {
    return LabelImageType::New().GetPointer();
  }
  return CTImageType::New().GetPointer();
}

AbdominalPhantomImageSource::LabelImageType *
AbdominalPhantomImageSource::GetLabelOutput()
{
  return dynamic_cast<LabelImageType *>(this->ProcessObject::GetOutput(1));
}

void
AbdominalPhantomImageSource::VerifyPreconditions() ITKv5_CONST
{
  Superclass::VerifyPreconditions();
  for (unsigned int d = 0; d < 3; ++d)
  {
    if (m_Size[d] == 0 || m_Size[d] > 4096)
    {
      itkExceptionMacro(<< "Size " << m_Size << ": expected 1..4096 voxels along every axis");
    }
    if (!(m_FieldOfView[d] > 0) || !std::isfinite(m_FieldOfView[d]))
    {
      itkExceptionMacro(<< "FieldOfView " << m_FieldOfView << ": expected positive extents in mm");
    }
  }
}

void
AbdominalPhantomImageSource::GenerateOutputInformation()
{
  CTImageType::RegionType region;
  region.SetSize(m_Size);
  CTImageType::SpacingType spacing;
  CTImageType::PointType   origin;
  for (unsigned int d = 0; d < 3; ++d)
  {
    spacing[d] = m_FieldOfView[d] / m_Size[d];
    // Centred in x and y; z from 0 (bottom of the field of view) upwards.
    origin[d] = d < 2 ? -m_FieldOfView[d] / 2 + spacing[d] / 2 : spacing[d] / 2;
  }
  for (unsigned int i = 0; i < 2; ++i)
  {
    ImageBase<3> * out = dynamic_cast<ImageBase<3> *>(this->ProcessObject::GetOutput(i));
    out->SetLargestPossibleRegion(region);
    out->SetSpacing(spacing);
    out->SetOrigin(origin);
    CTImageType::DirectionType direction;
    direction.SetIdentity();
    out->SetDirection(direction);
  }
}

void
AbdominalPhantomImageSource::GenerateData()
{
  CTImageType *    ct = this->GetOutput();
  LabelImageType * labels = this->GetLabelOutput();
  labels->SetBufferedRegion(labels->GetLargestPossibleRegion());
  ct->SetBufferedRegion(ct->GetLargestPossibleRegion());
  ct->Allocate();
  labels->Allocate();

  const Anatomy a = BuildAnatomy(m_Seed, m_Modality);
  m_NoiseSigma = a.noiseSigma;
  Grid grid;
  grid.nx = m_Size[0];
  grid.ny = m_Size[1];
  grid.nz = m_Size[2];
  for (unsigned int d = 0; d < 3; ++d)
  {
    grid.origin[d] = ct->GetOrigin()[d];
    grid.spacing[d] = ct->GetSpacing()[d];
  }
  MultiThreaderBase::Pointer threader = MultiThreaderBase::New();

  // Tissue classes and organ labels, then HU, partial-volume blur and noise.
  std::vector<unsigned char> tissue(static_cast<size_t>(grid.nx * grid.ny * grid.nz), Air);
  std::vector<float>         organValue(tissue.size(), 0.0f); // implicit value inside the voxel's organ
  unsigned char *            label = labels->GetBufferPointer();
  std::fill(label, label + tissue.size(), 0);
  PaintTissues(a, grid, threader, tissue, label, organValue);

  auto hu = Image<float, 3>::New();
  hu->CopyInformation(ct);
  hu->SetRegions(ct->GetLargestPossibleRegion());
  hu->Allocate();
  RenderIntensities(
    a, grid, m_Modality == ModalityEnum::PortalVenous, threader, tissue, label, organValue, hu->GetBufferPointer());
  BlurAndAddNoise(a, grid, m_Seed, static_cast<uint64_t>(m_Modality), threader, hu, ct->GetBufferPointer());
}

void
AbdominalPhantomImageSource::PrintSelf(std::ostream & os, Indent indent) const
{
  Superclass::PrintSelf(os, indent);
  os << indent << "Size: " << m_Size << std::endl;
  os << indent << "FieldOfView: " << m_FieldOfView << std::endl;
  os << indent << "Seed: " << m_Seed << std::endl;
  os << indent << "Modality: " << m_Modality << std::endl;
  os << indent << "NoiseSigma: " << m_NoiseSigma << std::endl;
}

} // namespace itk
