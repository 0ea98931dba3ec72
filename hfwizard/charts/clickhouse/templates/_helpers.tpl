{{- define "clickhouse.labels" -}}
app.kubernetes.io/name: clickhouse
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: highflame
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "clickhouse.selector" -}}
app.kubernetes.io/name: clickhouse
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "clickhouse.image" -}}
{{- $g := .Values.global -}}
{{- printf "%s/%s/%s:%s" $g.imageRegistry $g.imageRepository .Values.image.name (default .Chart.AppVersion $g.imageTag) -}}
{{- end -}}

{{- define "clickhouse.passwordEnv" -}}
- name: CLICKHOUSE_USER
  value: {{ .Values.auth.user | quote }}
- name: CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "auth.existingSecret (the Secret with the ClickHouse password) is required" .Values.auth.existingSecret }}
      key: {{ .Values.auth.key }}
{{- end -}}
