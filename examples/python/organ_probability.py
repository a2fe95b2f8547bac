#!/usr/bin/python3
"""Example: the segmentation stage by stage with the patch-level filters, keeping one organ's
probability map (what the one-call AGCLSegmentationFilter hides).

    organ_probability.py CT.nii.gz MODEL.agcl ORGAN_LABEL OUT_PROBABILITY.nrrd OUT_LABELS.nii.gz [--raw]

--raw: no post-processing (largest component, hole filling) of the label map.
"""
import sys

import itk_agcl


def stage_by_stage(ct, model, device="cpu", post_processing=True):
    """The five filters of the one-call segmentation, connected and run; returns them by name."""
    config = model.GetConfig()
    organs = [o["label"] for o in config["organs"]]
    # 1. Coarse segmentation and one attention map per organ.
    attention = itk_agcl.CoarseAttentionFilter.New(ct, MarginMM=config["margin_mm"], Device=device)
    attention.SetModel(model)
    attention.Update()
    # 2. Query patches where the attention is, with the model's patch settings.
    sampler = itk_agcl.QueryPatchSamplerFilter.New(ct, PatchSize=config["patch_size"],
                                                   PatchSpacingMM=config["patch_spacing_mm"],
                                                   Overlap=config["overlap"], WindowLow=config["window"][0],
                                                   WindowHigh=config["window"][1])
    # 5. Fusion back onto the CT's grid, keeping the probabilities, with the coarse network's
    #    vote when the model has one (its coarse_weight).
    fusion = itk_agcl.LabelFusionFilter.New(Threshold=config["threshold"], ProbabilityMaps=True,
                                            PostProcessing=post_processing,
                                            CoarseWeight=config.get("coarse_weight", 0.0),
                                            CoarseVoteScaledToPeak=config.get("coarse_vote_scaled_to_peak", False))
    for organ in config["organs"]:
        if "threshold" in organ:  # the organ's own threshold (the model's otherwise)
            fusion.SetOrganThreshold(organ["label"], organ["threshold"])
    for label in organs:
        sampler.SetAttentionMap(label, attention.GetAttentionMap(label))
        fusion.SetAttentionMap(label, attention.GetAttentionMap(label))
        fusion.SetCoarseProbabilityMap(label, attention.GetCoarseProbabilityMap(label))
    # 3.-4. Encoder and decoder on the patches (TensorDataObjects between the filters).
    encoder = itk_agcl.AGCLEncoderFilter.New(sampler.GetOutput(), Device=device)
    encoder.SetModel(model)
    decoder = itk_agcl.ASPPDecoderFilter.New(encoder.GetOutput(), Device=device)
    decoder.SetModel(model)
    fusion.SetPatches(decoder.GetOutput())
    fusion.SetReferenceImage(ct)
    fusion.Update()  # runs the sampler, the encoder and the decoder first (an ITK pipeline)
    return {"attention": attention, "sampler": sampler, "encoder": encoder, "decoder": decoder, "fusion": fusion}


def main(ct_file, model_file, organ, probability_file, labels_file, *flags):
    organ = int(organ)
    ct = itk_agcl.imread(ct_file)
    model = itk_agcl.load_model(model_file)  # read once, shared by the filters
    organs = [o["label"] for o in model.GetConfig()["organs"]]
    if organ not in organs:
        sys.exit("organ %d is not one of the model's organs %s" % (organ, organs))
    filters = stage_by_stage(ct, model, post_processing="--raw" not in flags)
    patches = filters["sampler"].GetOutput()
    print("%d query patches, %d of organ %d" % (patches.GetNumberOfItems(),
                                                sum(m["organ"] == organ for m in patches.GetMetadata()), organ))
    itk_agcl.imwrite(filters["fusion"].GetProbabilityMap(organ), probability_file)
    itk_agcl.imwrite(filters["fusion"].GetOutput(), labels_file)


if __name__ == "__main__":
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
