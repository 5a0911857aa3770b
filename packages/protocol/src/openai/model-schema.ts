/** `GET /v1/models` and `GET /v1/models/{model}`. */
import { Type, type Static } from "typebox";

const modelProperties = {
  id: Type.String({ description: "The id clients send in `model`." }),
  object: Type.Literal("model"),
  created: Type.Integer({ description: "Unix time (seconds) when this gateway loaded its catalog." }),
  owned_by: Type.String({ description: "Always `switchboard`." }),
};
const modelDescription = "A model this gateway serves. Aliases resolve to it but are not listed.";

export const ModelSchema = Type.Object(modelProperties, { $id: "Model", description: modelDescription });
export type Model = Static<typeof ModelSchema>;

export const ModelListSchema = Type.Object(
  {
    object: Type.Literal("list"),
    // Inlined rather than nested by `$id`, so both schemas can be registered side by side.
    data: Type.Array(Type.Object(modelProperties, { description: modelDescription })),
  },
  { $id: "ListModelsResponse", description: "Every model in the catalog, in configuration order." },
);
export type ModelList = Static<typeof ModelListSchema>;
