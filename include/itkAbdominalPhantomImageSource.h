/*=========================================================================
 *  AGCL for ITK — Apache License 2.0, see LICENSE.
 *=========================================================================*/
#ifndef itkAbdominalPhantomImageSource_h
#define itkAbdominalPhantomImageSource_h

#include "itkImage.h"
#include "itkImageSource.h"

#include <array>
#include <string>
#include <vector>

namespace itk {

/** \class AbdominalPhantomImageSource
 * \brief A synthetic abdominal CT volume (int16 HU) and its 12-organ label map, standing in for BTCV.
 *
 * Output 0 is the CT image, output 1 (GetLabelOutput()) the label map with BTCV's label
 * values 1..12 (spleen, right kidney, left kidney, gallbladder, esophagus, liver, stomach,
 * aorta, inferior vena cava, portal & splenic veins, pancreas, right adrenal gland).
 * Figures (organ volumes, diameters, positions, HU per phase) follow shared/phantom-reference.md.
 *
 * The field of view is that of an abdominal CT (default 350 x 350 x 250 mm, patient LPS axes:
 * x towards the patient's left, y posterior, z towards the head); the voxel count only sets the
 * spacing. Every anatomical and acquisition variation (body size, organ sizes, positions,
 * rotations, smooth deformations, noise sigma 11-18 HU) is drawn from the seed; the two
 * modalities of one seed share the anatomy. Same seed and parameters give bit-identical output.
 * \ingroup AGCLSegmentation
 */
class AbdominalPhantomImageSource : public ImageSource<Image<short, 3>>
{
public:
  ITK_DISALLOW_COPY_AND_MOVE(AbdominalPhantomImageSource);
  using Self = AbdominalPhantomImageSource;
  using Superclass = ImageSource<Image<short, 3>>;
  using Pointer = SmartPointer<Self>;
  using ConstPointer = SmartPointer<const Self>;
  itkNewMacro(Self);
  itkTypeMacro(AbdominalPhantomImageSource, ImageSource);

  using CTImageType = Image<short, 3>;
  using LabelImageType = Image<unsigned char, 3>;
  using SizeType = CTImageType::SizeType;
  using FieldOfViewType = Vector<double, 3>;

  /** Phase of the acquisition: non-contrast, or portal venous (~70 s after injection). */
  enum class ModalityEnum : uint8_t
  {
    NonContrast,
    PortalVenous
  };

  struct OrganDescription
  {
    unsigned char      label;
    std::string        name;
    std::array<int, 3> color;
  };
  /** The 12 organs (BTCV order and label values) with display colours. */
  static const std::vector<OrganDescription> &
  GetOrgans();
  /** "noncontrast" or "contrast". */
  static std::string
  GetModalityName(ModalityEnum modality);
  /** Parses "noncontrast" or "contrast"; throws itk::ExceptionObject otherwise. */
  static ModalityEnum
  ParseModality(const std::string & text);

  itkSetMacro(Size, SizeType);
  itkGetConstReferenceMacro(Size, SizeType);
  /** Physical extent in mm (x, y, z); default 350 x 350 x 250. */
  itkSetMacro(FieldOfView, FieldOfViewType);
  itkGetConstReferenceMacro(FieldOfView, FieldOfViewType);
  itkSetMacro(Seed, uint64_t);
  itkGetConstMacro(Seed, uint64_t);
  itkSetEnumMacro(Modality, ModalityEnum);
  itkGetEnumMacro(Modality, ModalityEnum);

  LabelImageType *
  GetLabelOutput();

  /** The noise sigma (HU) drawn for this seed: valid after Update(). */
  itkGetConstMacro(NoiseSigma, double);

protected:
  AbdominalPhantomImageSource();
  ~AbdominalPhantomImageSource() override = default;

  void
  VerifyPreconditions() ITKv5_CONST override;
  void
  GenerateOutputInformation() override;
  void
  GenerateData() override;
  using Superclass::MakeOutput;
  DataObjectPointer
  MakeOutput(DataObjectPointerArraySizeType index) override;
  void
  PrintSelf(std::ostream & os, Indent indent) const override;

private:
  SizeType        m_Size;
  FieldOfViewType m_FieldOfView;
  uint64_t        m_Seed{ 1 };
  ModalityEnum    m_Modality{ ModalityEnum::PortalVenous };
  double          m_NoiseSigma{ 0.0 };
};

std::ostream &
operator<<(std::ostream & os, AbdominalPhantomImageSource::ModalityEnum modality);

} // namespace itk

#endif
