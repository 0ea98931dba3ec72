{{/* Common labels of every object in the release. */}}
{{- define "highflame.labels" -}}
app.kubernetes.io/name: highflame
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: highflame
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one module; call with (dict "root" $ "module" "guardrails"). */}}
{{- define "highflame.selector" -}}
app.kubernetes.io/name: highflame
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .module | kebabcase }}
{{- end -}}

{{/* Object name of one module: <release>-<module-in-kebab-case>, at most 63 characters. */}}
{{- define "highflame.moduleName" -}}
{{- printf "%s-%s" .root.Release.Name (.module | kebabcase) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Image of one module: {registry}/{repository}/{module}:{tag or appVersion}. */}}
{{- define "highflame.image" -}}
{{- $g := .root.Values.global -}}
{{- printf "%s/%s/%s:%s" $g.imageRegistry $g.imageRepository (.module | kebabcase) (default .root.Chart.AppVersion $g.imageTag) -}}
{{- end -}}

{{/* An env entry read from a Secret; call with (dict "name" "ENV_NAME" "ref" {existingSecret, key}). */}}
{{- define "highflame.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ required (printf "%s needs existingSecret" .name) .ref.existingSecret }}
      key: {{ required (printf "%s needs key" .name) .ref.key }}
{{- end -}}
